//! A GGUF writer: metadata key/values and F32/F16 tensors, in the version-3 layout ggml reads (little-endian,
//! tensor data aligned to 32 bytes). Used to turn checkpoints that ship as safetensors into files llama.cpp loads
//! ([`crate::convert`]); reading GGUF stays with llama.cpp.

use std::io::{self, Write};

/// The alignment of tensor data (`general.alignment`'s default).
pub const ALIGNMENT: u64 = 32;

const MAGIC: &[u8; 4] = b"GGUF";
const VERSION: u32 = 3;

/// A metadata value (the GGUF types assay writes).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `GGUF_TYPE_UINT32`.
    U32(u32),
    /// `GGUF_TYPE_INT32`.
    I32(i32),
    /// `GGUF_TYPE_FLOAT32`.
    F32(f32),
    /// `GGUF_TYPE_BOOL`.
    Bool(bool),
    /// `GGUF_TYPE_STRING` (UTF-8).
    Str(String),
    /// `GGUF_TYPE_ARRAY` of strings.
    StrArray(Vec<String>),
    /// `GGUF_TYPE_ARRAY` of `INT32`.
    I32Array(Vec<i32>),
}

impl Value {
    fn type_id(&self) -> u32 {
        match self {
            Value::U32(_) => 4,
            Value::I32(_) => 5,
            Value::F32(_) => 6,
            Value::Bool(_) => 7,
            Value::Str(_) => 8,
            Value::StrArray(_) | Value::I32Array(_) => 9,
        }
    }
}

/// Tensor elements, in ggml's element order.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// `GGML_TYPE_F32`.
    F32(Vec<f32>),
    /// `GGML_TYPE_F16`.
    F16(Vec<half::f16>),
}

impl TensorData {
    fn ggml_type(&self) -> u32 {
        match self {
            TensorData::F32(_) => 0,
            TensorData::F16(_) => 1,
        }
    }

    fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::F16(v) => v.len(),
        }
    }

    fn bytes(&self) -> u64 {
        match self {
            TensorData::F32(v) => 4 * v.len() as u64,
            TensorData::F16(v) => 2 * v.len() as u64,
        }
    }
}

/// One tensor: its name and its dimensions in ggml order (`ne[0]`, the fastest-varying, first: the reverse of
/// PyTorch's shape).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Name as llama.cpp looks it up (`blk.0.attn_q.weight`).
    pub name: String,
    /// Dimensions, innermost first.
    pub dims: Vec<u64>,
    /// The elements.
    pub data: TensorData,
}

/// A GGUF file being assembled.
#[derive(Debug, Default)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    tensors: Vec<Tensor>,
}

impl GgufWriter {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) a metadata key.
    pub fn set(&mut self, key: &str, value: Value) {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.metadata.push((key.to_string(), value)),
        }
    }

    /// Add a tensor. Panics when the dimensions do not match the element count: that is a bug in the converter.
    pub fn add_tensor(&mut self, tensor: Tensor) {
        let elements: u64 = tensor.dims.iter().product();
        assert_eq!(
            elements,
            tensor.data.len() as u64,
            "tensor {}: dims {:?} do not match {} elements",
            tensor.name,
            tensor.dims,
            tensor.data.len()
        );
        self.tensors.push(tensor);
    }

    /// The tensors added so far.
    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    /// Write the file.
    pub fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let mut header = Vec::new();
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        header.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_str(&mut header, key);
            header.extend_from_slice(&value.type_id().to_le_bytes());
            put_value(&mut header, value);
        }
        let mut offset = 0u64;
        for tensor in &self.tensors {
            put_str(&mut header, &tensor.name);
            header.extend_from_slice(&(tensor.dims.len() as u32).to_le_bytes());
            for d in &tensor.dims {
                header.extend_from_slice(&d.to_le_bytes());
            }
            header.extend_from_slice(&tensor.data.ggml_type().to_le_bytes());
            header.extend_from_slice(&offset.to_le_bytes());
            offset = (offset + tensor.data.bytes()).next_multiple_of(ALIGNMENT);
        }
        pad(&mut header);
        out.write_all(&header)?;
        for tensor in &self.tensors {
            let mut bytes = Vec::with_capacity(tensor.data.bytes() as usize + ALIGNMENT as usize);
            match &tensor.data {
                TensorData::F32(v) => v.iter().for_each(|x| bytes.extend(x.to_le_bytes())),
                TensorData::F16(v) => v.iter().for_each(|x| bytes.extend(x.to_le_bytes())),
            }
            pad(&mut bytes);
            out.write_all(&bytes)?;
        }
        out.flush()
    }
}

fn pad(buf: &mut Vec<u8>) {
    let len = buf.len() as u64;
    buf.resize(len.next_multiple_of(ALIGNMENT) as usize, 0);
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn put_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::U32(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::I32(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::F32(v) => buf.extend_from_slice(&v.to_le_bytes()),
        Value::Bool(v) => buf.push(u8::from(*v)),
        Value::Str(s) => put_str(buf, s),
        Value::StrArray(items) => {
            buf.extend_from_slice(&8u32.to_le_bytes());
            buf.extend_from_slice(&(items.len() as u64).to_le_bytes());
            items.iter().for_each(|s| put_str(buf, s));
        }
        Value::I32Array(items) => {
            buf.extend_from_slice(&5u32.to_le_bytes());
            buf.extend_from_slice(&(items.len() as u64).to_le_bytes());
            items
                .iter()
                .for_each(|v| buf.extend_from_slice(&v.to_le_bytes()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ggml's own reader (`gguf_init_from_file`, through llama-cpp-2) reads back what was written.
    #[test]
    fn ggml_reads_back_metadata_and_tensor_layout() {
        let mut w = GgufWriter::new();
        w.set("general.architecture", Value::Str("bert".into()));
        w.set("bert.block_count", Value::U32(6));
        w.set("bert.attention.causal", Value::Bool(false));
        w.set("x.eps", Value::F32(1e-12));
        w.set(
            "tokenizer.ggml.tokens",
            Value::StrArray(vec!["[PAD]".into(), "▁a".into()]),
        );
        w.set("tokenizer.ggml.token_type", Value::I32Array(vec![3, 1]));
        w.add_tensor(Tensor {
            name: "a".into(),
            dims: vec![3],
            data: TensorData::F32(vec![1.0, 2.0, 3.0]),
        });
        w.add_tensor(Tensor {
            name: "b".into(),
            dims: vec![2, 2],
            data: TensorData::F16(vec![half::f16::from_f32(0.5); 4]),
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.gguf");
        let mut file = std::fs::File::create(&path).unwrap();
        w.write(&mut file).unwrap();
        drop(file);
        let bytes = std::fs::read(&path).unwrap();
        // Header, then tensor "a" at data offset 0 and "b" at 32 (aligned).
        let data_start = bytes.len() - 64;
        assert_eq!(data_start % 32, 0);
        assert_eq!(&bytes[data_start..data_start + 4], &1.0f32.to_le_bytes());
        assert_eq!(
            &bytes[data_start + 32..data_start + 34],
            &half::f16::from_f32(0.5).to_le_bytes()
        );

        let ctx = llama_cpp_2::gguf::GgufContext::from_file(&path).expect("ggml reads it");
        assert_eq!(ctx.n_tensors(), 2);
        let arch = ctx.find_key("general.architecture");
        assert_eq!(ctx.val_str(arch), Some("bert"));
        assert_eq!(ctx.val_u32(ctx.find_key("bert.block_count")), 6);
        assert!(ctx.find_key("tokenizer.ggml.tokens") >= 0);
    }
}
