//! The cryptography of an encrypted Secret Service session, algorithm
//! `dh-ietf1024-sha256-aes128-cbc-pkcs7` (Secret Service API, "Transfer of Secrets"):
//! a Diffie-Hellman exchange in the 1024-bit MODP group of RFC 2409, HKDF-SHA256 of the
//! shared secret (no salt, no info) for a 128-bit AES key, and AES-128-CBC with PKCS#7
//! padding for each secret, with the IV in the secret's `parameters`.
//!
//! The arithmetic is RustCrypto's crypto-bigint: constant-time and allocation-free. The
//! private exponent has 256 bits, more than twice the about 80-bit strength of the group
//! (RFC 3526 section 8), which makes each exponentiation a quarter of a 1024-bit one.

use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Odd, U256, U1024};
use zeroize::Zeroize;

use crate::SecretBytes;

pub const ALGORITHM: &str = "dh-ietf1024-sha256-aes128-cbc-pkcs7";

include!("dh_group.rs");
const PRIME: U1024 = U1024::from_be_hex(PRIME_HEX);
const PARAMS: FixedMontyParams<{ U1024::LIMBS }> =
    FixedMontyParams::new(Odd::<U1024>::from_be_hex(PRIME_HEX));
const GENERATOR: U1024 = U1024::from_u8(2);
const PRIVATE_BITS: u32 = U256::BITS;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("the system's random number generator failed")]
    Random,
    #[error("the Secret Service sent an invalid public key")]
    BadPublicKey,
    #[error("a secret from the Secret Service does not decrypt")]
    Decrypt,
    #[error("a secret from the Secret Service has an invalid initialisation vector")]
    BadIv,
}

/// `base ^ exponent mod PRIME`, in constant time.
fn powm(base: &U1024, exponent: &U256) -> U1024 {
    FixedMontyForm::new(base, &PARAMS)
        .pow_bounded_exp(exponent, PRIVATE_BITS)
        .retrieve()
}

/// Our half of the exchange. The private exponent is wiped on drop.
pub struct KeyPair {
    private: U256,
    public: U1024,
}

impl Drop for KeyPair {
    fn drop(&mut self) {
        self.private.zeroize();
    }
}

impl KeyPair {
    /// A fresh key pair. The client makes it while its first search is on the bus, so the
    /// exponentiation overlaps the service's answer; a precomputed table of powers of the
    /// generator was measured to save nothing a caller could see (README "Performance").
    pub fn generate() -> Result<KeyPair, SessionError> {
        let private = loop {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|_| SessionError::Random)?;
            let private = U256::from_be_slice(&bytes);
            bytes.zeroize();
            if private > U256::ONE {
                break private;
            }
        };
        let public = powm(&GENERATOR, &private);
        Ok(KeyPair { private, public })
    }

    /// Our public key, big-endian without leading zeros.
    pub fn public_bytes(&self) -> Vec<u8> {
        minimal_be_bytes(&self.public)
    }

    /// The AES key shared with the server whose public key is `server` (big-endian).
    pub fn shared_key(&self, server: &[u8]) -> Result<AesKey, SessionError> {
        let mut padded = [0u8; 128];
        if server.len() > padded.len() {
            return Err(SessionError::BadPublicKey);
        }
        padded[128 - server.len()..].copy_from_slice(server);
        let server = U1024::from_be_slice(&padded);
        // A valid public key is 1 < y < p - 1 (NIST SP 800-56A 5.6.2.3.1); anything else
        // would make the shared secret predictable.
        if server <= U1024::ONE || server >= PRIME.wrapping_sub(&U1024::ONE) {
            return Err(SessionError::BadPublicKey);
        }
        let mut shared = powm(&server, &self.private);
        let mut ikm = shared.to_be_bytes();
        shared.zeroize();
        let mut key = [0u8; 16];
        let (_, hk) = hkdf::Hkdf::<sha2::Sha256>::extract(None, &ikm);
        ikm.zeroize();
        hk.expand(&[], &mut key)
            .map_err(|_| SessionError::BadPublicKey)?;
        Ok(AesKey(key))
    }
}

fn minimal_be_bytes(value: &U1024) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let first = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len() - 1);
    bytes[first..].to_vec()
}

/// The session's AES-128 key, wiped on drop.
pub struct AesKey([u8; 16]);

impl Drop for AesKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

type Encryptor = cbc::Encryptor<aes::Aes128>;
type Decryptor = cbc::Decryptor<aes::Aes128>;

impl AesKey {
    /// Encrypt `plain` under a fresh random IV: (IV, ciphertext).
    pub fn encrypt(&self, plain: &[u8]) -> Result<([u8; 16], Vec<u8>), SessionError> {
        use aes::cipher::block_padding::Pkcs7;
        use aes::cipher::{BlockModeEncrypt, KeyIvInit};
        let mut iv = [0u8; 16];
        getrandom::fill(&mut iv).map_err(|_| SessionError::Random)?;
        let cipher = Encryptor::new_from_slices(&self.0, &iv).map_err(|_| SessionError::BadIv)?;
        Ok((iv, cipher.encrypt_padded_vec::<Pkcs7>(plain)))
    }

    /// Decrypt a secret the service sent with IV `iv`.
    pub fn decrypt(&self, iv: &[u8], data: &[u8]) -> Result<SecretBytes, SessionError> {
        use aes::cipher::block_padding::Pkcs7;
        use aes::cipher::{BlockModeDecrypt, KeyIvInit};
        let cipher = Decryptor::new_from_slices(&self.0, iv).map_err(|_| SessionError::BadIv)?;
        cipher
            .decrypt_padded_vec::<Pkcs7>(data)
            .map(|plain| SecretBytes::new(Box::new(plain)))
            .map_err(|_| SessionError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExposeSecret;

    /// Two key pairs agree on the shared key, as the service and we must.
    #[test]
    fn both_sides_derive_the_same_key() {
        let a = KeyPair::generate().unwrap();
        let b = KeyPair::generate().unwrap();
        let ka = a.shared_key(&b.public_bytes()).unwrap();
        let kb = b.shared_key(&a.public_bytes()).unwrap();
        assert_eq!(ka.0, kb.0);
        let (iv, data) = ka.encrypt(b"the secret").unwrap();
        assert_eq!(
            kb.decrypt(&iv, &data).unwrap().expose_secret(),
            b"the secret"
        );
    }

    #[test]
    fn out_of_range_server_keys_are_refused() {
        let k = KeyPair::generate().unwrap();
        let p_minus_one = minimal_be_bytes(&PRIME.wrapping_sub(&U1024::ONE));
        for bad in [
            vec![],
            vec![0],
            vec![1],
            p_minus_one,
            minimal_be_bytes(&PRIME),
            vec![0xff; 129],
        ] {
            assert_eq!(
                k.shared_key(&bad).err(),
                Some(SessionError::BadPublicKey),
                "{bad:?}"
            );
        }
        assert!(k.shared_key(&[2]).is_ok());
    }

    #[test]
    fn tampered_ciphertext_and_bad_ivs_are_errors() {
        let a = KeyPair::generate().unwrap();
        let key = a
            .shared_key(&KeyPair::generate().unwrap().public_bytes())
            .unwrap();
        let (iv, mut data) = key.encrypt(b"0123456789abcdef-more").unwrap();
        assert_eq!(
            key.decrypt(&iv[..8], &data).err(),
            Some(SessionError::BadIv)
        );
        let last = data.len() - 1;
        data[last] ^= 0xff;
        assert!(key.decrypt(&iv, &data).is_err());
        assert!(key.decrypt(&iv, &data[..5]).is_err());
    }

    /// The exponentiation matches a known value: 2^(2^255 + 1) reduced, computed independently
    /// by squaring (so a mistake in the constants shows up).
    #[test]
    fn exponentiation_agrees_with_repeated_squaring() {
        let e = U256::ONE.shl_vartime(255).wrapping_add(&U256::ONE);
        let mut acc = FixedMontyForm::new(&GENERATOR, &PARAMS);
        for _ in 0..255 {
            acc = acc.square();
        }
        let expected = acc
            .mul(&FixedMontyForm::new(&GENERATOR, &PARAMS))
            .retrieve();
        assert_eq!(powm(&GENERATOR, &e), expected);
    }
}
