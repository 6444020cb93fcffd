//! Conveniences for driving netdes from Rust: scenario values to and from RON text,
//! loading a [`Scenario`] built or edited in code, and reading an [`Outcome`].
//!
//! A [`Scenario`] is the file format as Rust values, so a program can load a file, change
//! fields and run the result; [`Scenario::to_ron`] writes it back as a file that loads
//! again to the same value (the round trip is tested on every example).

use crate::load::{explain_ron, load_str, Loaded, ScenarioError};
use crate::run::Outcome;
use crate::schema::Scenario;
use serde::de::DeserializeOwned;

fn options() -> ron::Options {
    ron::Options::default().with_default_extension(
        ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES
            | ron::extensions::Extensions::IMPLICIT_SOME,
    )
}

/// Parses any part of the schema from RON text, with the same extensions and errors as a
/// scenario file (`file` names the text in messages):
///
/// ```
/// use scenarios::schema::{AppDecl, LinkDecl};
/// let link: LinkDecl = scenarios::parse_ron("link", r#"Link(a: "h1", b: "r1", delay: "5ms")"#)?;
/// assert_eq!(link.delay.as_nanos(), 5_000_000);
/// let app: AppDecl = scenarios::parse_ron("app", r#"TcpBulk(from: "h1", to: "h2:80", bytes: "1MB")"#)?;
/// # Ok::<(), scenarios::ScenarioError>(())
/// ```
pub fn parse_ron<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, ScenarioError> {
    options().from_str(text).map_err(|e| ScenarioError {
        file: file.to_string(),
        line: e.span.start.line.max(1),
        col: e.span.start.col.max(1),
        message: explain_ron(&e.code),
    })
}

impl Scenario {
    /// The scenario as a RON file that loads back to an equal value. Fields that are
    /// `None` (absent optional settings, and the `None` loss model) are left out, as a
    /// person would; every other field is written, defaults included. Host groups are
    /// written as groups ([`Scenario::as_declared`]).
    pub fn to_ron(&self) -> String {
        let config = ron::ser::PrettyConfig::new()
            .indentor("    ")
            .struct_names(true)
            .extensions(ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES);
        // Every schema type serializes to RON (no maps with non-string keys, no NaN).
        // Groups are written, not the nodes and links they expand to.
        let text = ron::ser::to_string_pretty(&*self.as_declared(), config).unwrap_or_default();
        let mut out = String::with_capacity(text.len());
        for line in text.lines() {
            let t = line.trim();
            // Every optional field has a default of None, and `loss` defaults to None.
            let none = t
                .strip_suffix(": None,")
                .or_else(|| t.strip_suffix(": r#None,"))
                .is_some_and(|f| f.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            if !none {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

impl Loaded {
    /// Loads a scenario built or changed in code, exactly as if `s.to_ron()` were the
    /// content of a file named `file`: validated, and with errors located in that text.
    pub fn from_scenario(file: &str, s: &Scenario) -> Result<Loaded, ScenarioError> {
        load_str(file, &s.to_ron(), &[])
    }
}

impl Outcome {
    /// The flow whose `id` (app name) is `id`.
    pub fn flow(&self, id: &str) -> Option<&reports::FlowSummary> {
        self.summary.flows.iter().find(|f| f.id == id)
    }

    /// The link direction whose `id` is `id` (`"<link>:<from>-><to>"`).
    pub fn link(&self, id: &str) -> Option<&reports::LinkSummary> {
        self.summary.links.iter().find(|l| l.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every example written back as RON loads to the same scenario and runs to the same
    /// digest.
    #[test]
    fn every_example_round_trips_through_to_ron() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "ron") {
                continue;
            }
            let l = crate::load_file(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
            let text = l.scenario.to_ron();
            let back = load_str("back.ron", &text, &[])
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
            assert_eq!(back.scenario, l.scenario, "{}", path.display());
            assert_eq!(back.scenario.to_ron(), text, "{}: stable", path.display());
            n += 1;
        }
        assert!(n >= 20);
    }

    #[test]
    fn round_tripped_scenarios_run_identically() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tcp-bulk-lossy.ron");
        let l = crate::load_file(&path, &[]).unwrap();
        let back = Loaded::from_scenario("back.ron", &l.scenario).unwrap();
        let opts = crate::RunOptions::default();
        let a = crate::run(&l, &opts).unwrap();
        let b = crate::run(&back, &opts).unwrap();
        assert_eq!(a.summary.trace_digest, b.summary.trace_digest);
        assert!(a.flow("bulk").is_some_and(|f| f.rx_bytes == 2_000_000));
        assert!(a.link("client-r:client->r").is_some());
    }

    #[test]
    fn parse_ron_locates_errors() {
        let e =
            parse_ron::<crate::schema::LinkDecl>("x", "Link(a: \"h\", b: \"r\", dealy: \"1ms\")")
                .unwrap_err();
        assert_eq!((e.line, e.col), (1, 22));
        assert!(e.message.contains("unknown field `dealy`"), "{e}");
    }
}
