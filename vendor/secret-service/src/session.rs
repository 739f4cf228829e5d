// key exchange and crypto for session:
// 1. Before session negotiation (openSession), set private key and public key using DH method.
// 2. In session negotiation, send public key.
// 3. As result of session negotiation, get object path for session, which (I think
//      it means that it uses the same server public key to create an aes key which is used
//      to decode the encoded secret using the aes seed that's sent with the secret).
// 4. As result of session negotition, get server public key.
// 5. Use server public key, my private key, to set an aes key using HKDF.
// 6. Format Secret: aes iv is random seed, in secret struct it's the parameter (Array(Byte))
// 7. Format Secret: encode the secret value for the value field in secret struct.
//      This encoding uses the aes_key from the associated Session.

use crate::Error;
use crate::proxy::service::{OpenSessionResult, ServiceProxy, ServiceProxyBlocking};
use crate::ss::{ALGORITHM_DH, ALGORITHM_PLAIN};

use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Odd, U256, U1024};
use hybrid_array::{Array, typenum::U16};
use zbus::zvariant::OwnedObjectPath;

// docker-credential-hub patch: the exchange uses crypto-bigint (RustCrypto's constant-time,
// allocation-free fixed-size integers) instead of num-bigint, whose `modpow` is variable-time
// in the private exponent and allocates for every multiplication; about 25% less CPU per
// exponentiation, and a credential helper does two per invocation.

// for key exchange
include!("dh_group.rs");
const DH_PRIME: U1024 = U1024::from_be_hex(DH_PRIME_HEX);
/// The Montgomery parameters of `DH_PRIME`, computed at compile time.
const DH_PARAMS: FixedMontyParams<{ U1024::LIMBS }> =
    FixedMontyParams::new(Odd::<U1024>::from_be_hex(DH_PRIME_HEX));
const DH_GENERATOR: U1024 = U1024::from_u8(2);
/// Bits of the private exponent (see [Keypair::generate]).
const PRIVATE_BITS: u32 = U256::BITS;

/// `base ^ exponent mod DH_PRIME`, in constant time.
fn powm(base: &U1024, exponent: &U256) -> U1024 {
    FixedMontyForm::new(base, &DH_PARAMS)
        .pow_bounded_exp(exponent, PRIVATE_BITS)
        .retrieve()
}

#[cfg(target_pointer_width = "64")]
mod comb {
    include!(concat!(env!("OUT_DIR"), "/generator_comb.rs"));
}

/// `DH_GENERATOR ^ exponent mod DH_PRIME`, in constant time, from the table built by build.rs:
/// one multiplication per four-bit digit of the exponent (63 instead of the 336 of `powm`),
/// each table entry picked by a constant-time scan of the digit's 16 candidates
/// (docker-credential-hub patch; by `powm`, the key pair was half the CPU time of a lookup).
#[cfg(target_pointer_width = "64")]
fn generator_pow(exponent: &U256) -> U1024 {
    use crypto_bigint::{Choice, CtSelect};
    let words = exponent.as_words();
    let mut acc: Option<FixedMontyForm<{ U1024::LIMBS }>> = None;
    for (j, candidates) in comb::GENERATOR_COMB.iter().enumerate() {
        let digit = (words[j / 16] >> ((j % 16) * 4)) & 0xf;
        let mut entry = U1024::ZERO;
        for (d, candidate) in (0u64..).zip(candidates) {
            let candidate = U1024::from_words(*candidate);
            entry = entry.ct_select(&candidate, Choice::from_u64_eq(d, digit));
        }
        let entry = FixedMontyForm::from_montgomery(entry, &DH_PARAMS);
        acc = Some(match acc {
            None => entry,
            Some(acc) => acc.mul(&entry),
        });
    }
    acc.expect("64 digits").retrieve()
}

#[cfg(not(target_pointer_width = "64"))]
fn generator_pow(exponent: &U256) -> U1024 {
    powm(&DH_GENERATOR, exponent)
}

/// The public key for a private exponent (32 big-endian bytes), computed both from the
/// precomputed table and by plain exponentiation: the two must agree. For tests
/// (docker-credential-hub patch; its test suite runs only the root crate's tests).
#[doc(hidden)]
pub fn public_key_both_ways(private: &[u8; 32]) -> (Vec<u8>, Vec<u8>) {
    let private = U256::from_be_slice(private);
    (
        minimal_be_bytes(&generator_pow(&private)),
        minimal_be_bytes(&powm(&DH_GENERATOR, &private)),
    )
}

/// Big-endian bytes without leading zeros, as the original implementation sent them.
fn minimal_be_bytes(value: &U1024) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len() - 1);
    bytes[first..].to_vec()
}

#[allow(unused_macros)]
macro_rules! feature_needed {
    () => {
        compile_error!("Please enable a cryptography feature (crypto-rust or crypto-openssl) for the secret-service crate")
    }
}

type AesKey = Array<u8, U16>;
/// AES-CBC initialization vector
pub type AesIv = [u8; 16];

#[derive(Debug, Eq, PartialEq)]
pub enum EncryptionType {
    Plain,
    Dh,
}

pub(crate) struct Keypair {
    private: U256,
    public: U1024,
}

impl Drop for Keypair {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.private);
    }
}

impl Keypair {
    pub(crate) fn generate() -> Self {
        // docker-credential-hub patch: a 256-bit private exponent instead of 1024 bits. The
        // 1024-bit MODP group offers about 80-bit security; an exponent of at least twice
        // that (RFC 3526 section 8, NIST SP 800-56A) loses nothing, and each exponentiation
        // costs a quarter of the time on every helper invocation.
        let private = loop {
            let mut bytes = [0; 32];
            getrandom::fill(&mut bytes).expect("platform RNG failed");
            let private = U256::from_be_slice(&bytes);
            zeroize::Zeroize::zeroize(&mut bytes);
            if private > U256::ONE {
                break private;
            }
        };
        let public = generator_pow(&private);
        Self { private, public }
    }

    pub(crate) fn public_bytes(&self) -> Vec<u8> {
        minimal_be_bytes(&self.public)
    }

    /// The AES key shared with the server whose public key is `server_public_key` (big-endian).
    fn derive_shared(&self, server_public_key: &[u8]) -> Result<AesKey, Error> {
        // A valid public key is 1 < y < p - 1 (NIST SP 800-56A 5.6.2.3.1); anything else would
        // make the shared secret predictable.
        let mut padded = [0u8; 128];
        let len = server_public_key.len();
        if len > padded.len() {
            return Err(Error::Crypto("server public key is too long"));
        }
        padded[128 - len..].copy_from_slice(server_public_key);
        let server = U1024::from_be_slice(&padded);
        if server <= U1024::ONE || server >= DH_PRIME.wrapping_sub(&U1024::ONE) {
            return Err(Error::Crypto("server public key is out of range"));
        }
        // Derive the shared secret the server and us, as 128 big-endian bytes.
        let mut shared = powm(&server, &self.private);
        let mut ikm = [0u8; 128];
        ikm.copy_from_slice(&shared.to_be_bytes());

        // hkdf
        let salt = None;

        // output keying material
        let mut okm = [0; 16];
        hkdf(&ikm, salt, &mut okm);
        zeroize::Zeroize::zeroize(&mut shared);
        zeroize::Zeroize::zeroize(&mut ikm);

        Ok(Array::from(okm))
    }
}

#[cfg(feature = "crypto-openssl")]
fn hkdf(ikm: &[u8], salt: Option<&[u8]>, okm: &mut [u8]) {
    let mut ctx = openssl::pkey_ctx::PkeyCtx::new_id(openssl::pkey::Id::HKDF)
        .expect("hkdf context should not fail");
    ctx.derive_init().expect("hkdf derive init should not fail");
    ctx.set_hkdf_md(openssl::md::Md::sha256())
        .expect("hkdf set md should not fail");

    ctx.set_hkdf_key(ikm)
        .expect("hkdf set key should not fail");
    if let Some(salt) = salt {
        ctx.set_hkdf_salt(salt)
            .expect("hkdf set salt should not fail");
    }

    ctx.add_hkdf_info(&[]).unwrap();
    ctx.derive(Some(okm))
        .expect("hkdf expand should never fail");
}

#[cfg(feature = "crypto-rust")]
fn hkdf(ikm: &[u8], salt: Option<&[u8]>, okm: &mut [u8]) {
    use hkdf::Hkdf;
    use sha2::Sha256;

    let info = [];
    let (_, hk) = Hkdf::<Sha256>::extract(salt, ikm);
    hk.expand(&info, okm)
        .expect("hkdf expand should never fail");
}

#[cfg(all(not(feature = "crypto-rust"), not(feature = "crypto-openssl")))]
fn hkdf(ikm: &[u8], salt: Option<&[u8]>, okm: &mut [u8]) {
    feature_needed!()
}

/// docker-credential-hub patch: what [fetch_secret_sync] needs from a connection that does
/// its own (blocking) I/O.
pub trait CallSync {
    /// Write a method call to the bus.
    fn send(&mut self, call: &zbus::Message) -> Result<(), Error>;
    /// Wait for the reply to `call`; an error reply is an `Err`.
    fn reply_to(&mut self, call: &zbus::Message) -> Result<zbus::Message, Error>;
}

/// Fetch one item's secret over a fresh encrypted session, on a [CallSync] connection that has
/// already made a successful call to the service (docker-credential-hub patch; see
/// [crate::blocking::wait_until_admitted] for why that matters).
///
/// A credential helper does this once per process, so the round trips are the cost: the
/// calls go out directly on the connection (no proxies), and GetSecret, which needs only the
/// session's path, is sent before the shared key is derived; the key is computed while
/// gnome-keyring answers. The secret still crosses the bus encrypted.
pub fn fetch_secret_sync(
    bus: &mut impl CallSync,
    item: &zbus::zvariant::ObjectPath<'_>,
    prepared: crate::blocking::PreparedDh,
) -> Result<Vec<u8>, Error> {
    use crate::proxy::SecretStruct;
    use crate::ss::SS_DBUS_NAME;
    use zbus::zvariant::as_value;
    let keypair = prepared.join();
    let public = keypair.public_bytes();
    let open = zbus::Message::method_call("/org/freedesktop/secrets", "OpenSession")?
        .destination(SS_DBUS_NAME)?
        .interface("org.freedesktop.Secret.Service")?
        // The key as a typed variant: a `Value` would hold each byte as a `Value`.
        .build(&(ALGORITHM_DH, as_value::Serialize(&public)))?;
    bus.send(&open)?;
    let reply = bus.reply_to(&open)?;
    let body = reply.body();
    let (server_public_key, session): (as_value::Deserialize<Vec<u8>>, OwnedObjectPath) =
        body.deserialize()?;
    let get_secret = zbus::Message::method_call(item.clone(), "GetSecret")?
        .destination(SS_DBUS_NAME)?
        .interface("org.freedesktop.Secret.Item")?
        .build(&(&session,))?;
    bus.send(&get_secret)?;
    let aes_key = keypair.derive_shared(&server_public_key.0)?;
    let reply = bus.reply_to(&get_secret)?;
    let secret: SecretStruct = reply.body().deserialize()?;
    let aes_iv: AesIv = secret
        .parameters
        .try_into()
        .map_err(|_| Error::Crypto("secret has an invalid initialization vector"))?;
    decrypt(&secret.value, &aes_key, &aes_iv)
}

pub struct Session {
    pub object_path: OwnedObjectPath,
    aes_key: Option<AesKey>,
}

impl Session {
    fn encrypted_session(keypair: &Keypair, session: OpenSessionResult) -> Result<Self, Error> {
        let server_public_key: Vec<u8> = session.output.try_into()?;

        let aes_key = keypair.derive_shared(&server_public_key)?;

        Ok(Session {
            object_path: session.result,
            aes_key: Some(aes_key),
        })
    }

    pub fn new_blocking(
        service_proxy: &ServiceProxyBlocking,
        encryption: EncryptionType,
    ) -> Result<Self, Error> {
        match encryption {
            EncryptionType::Plain => {
                let session = service_proxy.open_session(ALGORITHM_PLAIN, "".into())?;
                let session_path = session.result;

                Ok(Session {
                    object_path: session_path,
                    aes_key: None,
                })
            }
            EncryptionType::Dh => Self::new_blocking_with_keypair(service_proxy, &Keypair::generate()),
        }
    }

    /// An encrypted session with a key pair generated beforehand (docker-credential-hub patch).
    pub(crate) fn new_blocking_with_keypair(
        service_proxy: &ServiceProxyBlocking,
        keypair: &Keypair,
    ) -> Result<Self, Error> {
        let session =
            service_proxy.open_session(ALGORITHM_DH, keypair.public_bytes().into())?;
        Self::encrypted_session(keypair, session)
    }

    pub async fn new(
        service_proxy: &ServiceProxy<'_>,
        encryption: EncryptionType,
    ) -> Result<Self, Error> {
        match encryption {
            EncryptionType::Plain => {
                let session = service_proxy
                    .open_session(ALGORITHM_PLAIN, "".into())
                    .await?;
                let session_path = session.result;

                Ok(Session {
                    object_path: session_path,
                    aes_key: None,
                })
            }
            EncryptionType::Dh => {
                let keypair = Keypair::generate();

                let session = service_proxy
                    .open_session(ALGORITHM_DH, keypair.public_bytes().into())
                    .await?;

                Self::encrypted_session(&keypair, session)
            }
        }
    }

    pub fn get_aes_key(&self) -> Option<&AesKey> {
        self.aes_key.as_ref()
    }
}

#[cfg(feature = "crypto-rust")]
pub fn encrypt(data: &[u8], key: &AesKey, iv: &AesIv) -> Vec<u8> {
    use aes::cipher::block_padding::Pkcs7;
    use aes::cipher::{BlockModeEncrypt, KeyIvInit};

    type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;

    Aes128CbcEnc::new(key, &Array::from(*iv)).encrypt_padded_vec::<Pkcs7>(data)
}

#[cfg(feature = "crypto-rust")]
pub fn decrypt(encrypted_data: &[u8], key: &AesKey, iv: &AesIv) -> Result<Vec<u8>, Error> {
    use aes::cipher::block_padding::Pkcs7;
    use aes::cipher::{BlockModeDecrypt, KeyIvInit};

    type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;

    Aes128CbcDec::new(key, &Array::from(*iv))
        .decrypt_padded_vec::<Pkcs7>(encrypted_data)
        .map_err(|_| Error::Crypto("message decryption failed"))
}

#[cfg(feature = "crypto-openssl")]
pub fn encrypt(data: &[u8], key: &AesKey, iv: &[u8]) -> Vec<u8> {
    use openssl::cipher::Cipher;
    use openssl::cipher_ctx::CipherCtx;

    let mut ctx = CipherCtx::new().expect("cipher creation should not fail");
    ctx.encrypt_init(Some(Cipher::aes_128_cbc()), Some(key), Some(iv))
        .expect("cipher init should not fail");

    let mut output = vec![];
    ctx.cipher_update_vec(data, &mut output)
        .expect("cipher update should not fail");
    ctx.cipher_final_vec(&mut output)
        .expect("cipher final should not fail");
    output
}

#[cfg(feature = "crypto-openssl")]
pub fn decrypt(encrypted_data: &[u8], key: &AesKey, iv: &[u8]) -> Result<Vec<u8>, Error> {
    use openssl::cipher::Cipher;
    use openssl::cipher_ctx::CipherCtx;

    let mut ctx = CipherCtx::new().expect("cipher creation should not fail");
    ctx.decrypt_init(Some(Cipher::aes_128_cbc()), Some(key), Some(iv))
        .expect("cipher init should not fail");

    let mut output = vec![];
    ctx.cipher_update_vec(encrypted_data, &mut output)
        .map_err(|_| Error::Crypto("message decryption failed"))?;
    ctx.cipher_final_vec(&mut output)
        .map_err(|_| Error::Crypto("message decryption failed"))?;
    Ok(output)
}

#[cfg(all(not(feature = "crypto-rust"), not(feature = "crypto-openssl")))]
pub fn encrypt(data: &[u8], key: &AesKey, iv: &AesIv) -> Vec<u8> {
    feature_needed!()
}

#[cfg(all(not(feature = "crypto-rust"), not(feature = "crypto-openssl")))]
pub fn decrypt(encrypted_data: &[u8], key: &AesKey, iv: &AesIv) -> Result<Vec<u8>, Error> {
    feature_needed!()
}

#[cfg(test)]
mod test {
    use super::*;

    // There is no async test because this tests that an encryption session can be made, nothing more.

    #[test]
    fn should_create_plain_session() {
        let conn = zbus::blocking::Connection::session().unwrap();
        let service_proxy = ServiceProxyBlocking::new(&conn).unwrap();
        let session = Session::new_blocking(&service_proxy, EncryptionType::Plain).unwrap();
        assert!(session.get_aes_key().is_none());
    }

    #[test]
    fn should_create_encrypted_session() {
        let conn = zbus::blocking::Connection::session().unwrap();
        let service_proxy = ServiceProxyBlocking::new(&conn).unwrap();
        let session = Session::new_blocking(&service_proxy, EncryptionType::Dh).unwrap();
        assert!(session.get_aes_key().is_some());
    }
}
