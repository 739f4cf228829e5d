//! A tiny xorshift generator for the fault and load tests: their timing and choices only need
//! to vary from run to run, not to be good random numbers.

pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed` (never the all-zero state, which xorshift keeps).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// A generator seeded from the clock (see [clock_seed]).
    pub fn seeded(salt: u64) -> Rng {
        Rng::new(clock_seed(salt))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A number in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A seed from the clock, mixed with `salt` so that generators made at the same moment
/// differ. A test prints it, so that a failure can be replayed.
pub fn clock_seed(salt: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    nanos ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}
