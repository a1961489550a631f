//! Reading a scenario directory in the conformance layout:
//! `records/<stage>/<Operation>_<NN>.json`, `watch/<prefix>.jsonl`, `timeline.jsonl`.

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One key/value found in a scenario, with where it came from.
#[derive(Debug, Clone)]
pub struct Sample {
    /// `file` or `file:line`.
    pub origin: String,
    pub key: String,
    pub value: Value,
}

#[derive(Debug, Deserialize)]
struct RecordPage {
    points: Vec<RecordPoint>,
}

#[derive(Debug, Deserialize)]
struct RecordPoint {
    key: String,
    value: Value,
}

/// One line of `watch/*.jsonl`.
#[derive(Debug, Clone, Deserialize)]
pub struct WatchEvent {
    pub action: String,
    pub key: String,
    /// The decoded value when the watcher saw JSON, else the raw string; `null` for deletes.
    #[serde(default)]
    pub value: Value,
}

/// One line of `timeline.jsonl`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimelineEvent {
    Config {
        action: String,
        key: String,
        #[serde(default)]
        value: Option<Value>,
    },
    JobCreated {
        job_id: String,
        action: String,
        resource_type: String,
        resource_id: String,
        version: u64,
        dependency: Vec<String>,
    },
    JobFinished {
        job_id: String,
        action: String,
        resource_type: String,
        resource_id: String,
        version: u64,
        #[serde(default)]
        failed: bool,
    },
}

/// A scenario directory.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub dir: PathBuf,
}

impl Scenario {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Scenario { dir: dir.into() }
    }

    /// The scenario's name (its directory name).
    pub fn name(&self) -> String {
        self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.dir).unwrap_or(path).display().to_string()
    }

    /// Every point of every `records/**/*.json` page, in path order.
    pub fn record_samples(&self) -> anyhow::Result<Vec<Sample>> {
        let mut files = Vec::new();
        collect_files(&self.dir.join("records"), "json", &mut files)?;
        let mut samples = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let page: RecordPage =
                serde_json::from_str(&text).with_context(|| format!("{}: not a records page", file.display()))?;
            let origin = self.relative(&file);
            samples.extend(page.points.into_iter().map(|p| Sample {
                origin: origin.clone(),
                key: p.key,
                value: p.value,
            }));
        }
        Ok(samples)
    }

    /// The events of every `watch/*.jsonl`, with their origin, in file then line order.
    pub fn watch_events(&self) -> anyhow::Result<Vec<(String, WatchEvent)>> {
        let mut files = Vec::new();
        collect_files(&self.dir.join("watch"), "jsonl", &mut files)?;
        let mut events = Vec::new();
        for file in files {
            let origin = self.relative(&file);
            for (n, event) in read_jsonl::<WatchEvent>(&file)? {
                events.push((format!("{origin}:{n}"), event));
            }
        }
        Ok(events)
    }

    /// The events of one watch file (`full`, `jobs`, …), or none if the file is absent.
    pub fn watch_file(&self, name: &str) -> anyhow::Result<Vec<WatchEvent>> {
        let path = self.dir.join("watch").join(format!("{name}.jsonl"));
        if !path.exists() {
            return Ok(Vec::new());
        }
        Ok(read_jsonl(&path)?.into_iter().map(|(_, e)| e).collect())
    }

    /// `timeline.jsonl` with line numbers; empty if the scenario has none.
    pub fn timeline(&self) -> anyhow::Result<Vec<(usize, TimelineEvent)>> {
        let path = self.dir.join("timeline.jsonl");
        if !path.exists() {
            return Ok(Vec::new());
        }
        read_jsonl(&path)
    }
}

fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<(usize, T)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line)
                .map(|event| (n + 1, event))
                .with_context(|| format!("{}:{}: malformed line", path.display(), n + 1))
        })
        .collect()
}

fn collect_files(dir: &Path, extension: &str, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_files(&path, extension, out)?;
        } else if path.extension().is_some_and(|e| e == extension) {
            out.push(path);
        }
    }
    Ok(())
}
