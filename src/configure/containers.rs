//! Wiring podman, skopeo and buildah to the helper (placeholder until it lands).

/// What was (or would be) changed for the containers tools.
#[derive(Default)]
pub struct Wiring {
    pub lines: Vec<String>,
    pub warnings: Vec<String>,
}

impl Wiring {
    pub fn lines(&self, _dry_run: bool) -> Vec<String> {
        self.lines.clone()
    }
}

pub fn planned() -> Wiring {
    Wiring::default()
}

pub fn wire() -> Wiring {
    Wiring::default()
}

pub fn planned_undo() -> Wiring {
    Wiring::default()
}

pub fn unwire() -> Wiring {
    Wiring::default()
}
