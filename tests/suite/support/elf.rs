//! What a binary's ELF headers say about how it was linked: its machine, whether it is
//! position-independent (type ET_DYN: a PIE or static-pie, so ASLR covers its own image),
//! and whether it names a program interpreter (PT_INTERP: it needs a dynamic loader).

use std::path::Path;

pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;
const ET_DYN: u16 = 3;
const PT_INTERP: u32 = 3;

pub struct Elf {
    pub machine: u16,
    pub position_independent: bool,
    pub interpreter: bool,
}

/// The headers of the 64-bit little-endian ELF file at `path` (every target we ship).
pub fn read(path: &Path) -> Elf {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.len() >= 64 && bytes[..4] == *b"\x7fELF" && bytes[4] == 2 && bytes[5] == 1,
        "{} is not a 64-bit little-endian ELF file",
        path.display()
    );
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (u64_at(32) as usize, u16_at(54) as usize, u16_at(56));
    let interpreter = (0..usize::from(phnum)).any(|i| {
        let at = phoff + i * phentsize;
        assert!(
            at + 4 <= bytes.len(),
            "{}: truncated program headers",
            path.display()
        );
        u32_at(at) == PT_INTERP
    });
    Elf {
        machine: u16_at(18),
        position_independent: u16_at(16) == ET_DYN,
        interpreter,
    }
}

/// `path` is a static-pie executable for `machine`: position-independent, no interpreter.
pub fn assert_static_pie(path: &Path, machine: u16) {
    let elf = read(path);
    assert_eq!(elf.machine, machine, "{}: ELF machine", path.display());
    assert!(
        elf.position_independent,
        "{} is not position-independent (ELF type is not ET_DYN): ASLR cannot move its image",
        path.display()
    );
    assert!(
        !elf.interpreter,
        "{} names a program interpreter (PT_INTERP): it is dynamically linked, not static-pie",
        path.display()
    );
}
