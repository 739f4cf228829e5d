//! Precompute the fixed-base table that makes our half of the Secret Service's
//! Diffie-Hellman key pair cheap (src/session.rs, `generator_pow`).
//!
//! For the generator g = 2 of the 1024-bit MODP group, entry [j][d] is g^(d * 16^j) mod p in
//! Montgomery form, for the 64 four-bit digits j of a 256-bit exponent: g^e is then the
//! product of one entry per digit, 63 multiplications instead of 256 squarings and 64
//! multiplications. The table depends only on public constants.

use std::fmt::Write;

use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Odd, U1024};

include!("src/dh_group.rs");

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/dh_group.rs");
    let params = FixedMontyParams::new_vartime(Odd::new(U1024::from_be_hex(PRIME_HEX)).unwrap());
    // g^(16^j), starting at g.
    let mut base = FixedMontyForm::new(&U1024::from_u8(2), &params);
    let mut out = String::from(
        "/// g^(d * 16^j) mod p in Montgomery form, as 16 little-endian 64-bit words (build.rs).\n\
         pub static GENERATOR_COMB: [[[u64; 16]; 16]; 64] = [\n",
    );
    for _ in 0..64 {
        out.push_str("[\n");
        let mut power = FixedMontyForm::one(&params);
        for _ in 0..16 {
            out.push('[');
            // Limbs are little-endian words; render them as u64 whatever the build host's word.
            let bytes = power.as_montgomery().to_le_bytes();
            for word in bytes.chunks(8) {
                let word = u64::from_le_bytes(word.try_into().unwrap());
                write!(out, "{word:#x},").unwrap();
            }
            out.push_str("],\n");
            power = power.mul(&base);
        }
        out.push_str("],\n");
        for _ in 0..4 {
            base = base.square();
        }
    }
    out.push_str("];\n");
    let path = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("generator_comb.rs");
    std::fs::write(path, out).unwrap();
}
