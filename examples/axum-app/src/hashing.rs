//! Password hashing on a fixed pool of threads, each with its argon2id memory allocated once.
//!
//! An argon2id hash (the crate's defaults: 19 MiB, 2 passes) fills 19 MiB of memory. Hashing
//! on `spawn_blocking` with a fresh allocation per hash lets the allocator keep freed blocks in
//! ever more places: measured, 20 sequential logins grew the process by ~100 MB and 100
//! parallel logins peaked at ~470 MB even with the concurrency bounded by a semaphore. Here
//! [`threads`] worker threads each own one memory area, reused for every hash
//! (`hash_password_into_with_memory`), so hashing costs `threads × 19 MiB` for the life of the
//! process and never more. Requests wait for a worker without blocking the runtime.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

use crate::error::ApiError;

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// How many hashing threads run: the number of cores, between 1 and 4 (more hashes at once
/// than cores only add memory).
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4))
}

fn pool() -> &'static Mutex<Sender<Job>> {
    static POOL: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads() {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || worker(&rx));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Mutex::new(tx)
    })
}

fn worker(jobs: &Mutex<Receiver<Job>>) {
    let mut memory = Vec::new();
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(&mut memory),
            Err(_) => return, // the sender is gone: the process is ending
        }
    }
}

/// Runs `work` on a hashing thread with that thread's memory.
async fn run<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move |memory| {
        let _ = tx.send(work(memory));
    });
    pool()
        .lock()
        .map_err(|_| ApiError::Internal(format!("{what}: hashing pool poisoned")))?
        .send(job)
        .map_err(|_| ApiError::Internal(format!("{what}: no hashing thread")))?;
    rx.await
        .map_err(|_| ApiError::Internal(format!("{what}: the hashing thread stopped")))
}

/// Grows the worker's memory to what `params` need (once, for the defaults).
fn blocks_for<'m>(memory: &'m mut Vec<Block>, params: &Params) -> &'m mut [Block] {
    let n = params.block_count();
    if memory.len() < n {
        memory.resize(n, Block::default());
    }
    &mut memory[..n]
}

/// An argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) for `password`.
pub async fn hash(password: String) -> Result<String, ApiError> {
    run("hashing a password", move |memory| {
        hash_with(memory, password.as_bytes())
            .map_err(|e| ApiError::Internal(format!("hashing a password: {e}")))
    })
    .await?
}

fn hash_with(memory: &mut Vec<Block>, password: &[u8]) -> argon2::password_hash::Result<String> {
    let params = Params::default();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf)?;
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(len, |out| {
        Ok(argon.hash_password_into_with_memory(
            password,
            salt_bytes,
            out,
            blocks_for(memory, &params),
        )?)
    })?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `stored` (constant-time comparison).
pub async fn verify(password: String, stored: String) -> Result<bool, ApiError> {
    run("verifying a password", move |memory| {
        verify_with(memory, password.as_bytes(), &stored)
    })
    .await
}

fn verify_with(memory: &mut Vec<Block>, password: &[u8], stored: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) =
        (Algorithm::try_from(hash.algorithm), Params::try_from(&hash))
    else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    // A stored hash asks for its own memory size; refuse absurd ones (over 256 MiB).
    if params.block_count() > 256 * 1024 {
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params.clone());
    let computed = Output::init_with(expected.len(), |out| {
        Ok(argon.hash_password_into_with_memory(
            password,
            salt_bytes,
            out,
            blocks_for(memory, &params),
        )?)
    });
    computed.is_ok_and(|c| c == expected)
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};

    use super::*;

    #[test]
    fn hashes_verify_both_ways_with_the_argon2_crate() {
        let mut memory = Vec::new();
        let ours = hash_with(&mut memory, b"correct horse").unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(verify_with(&mut memory, b"correct horse", &ours));
        assert!(!verify_with(&mut memory, b"wrong horse", &ours));
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        assert!(verify_with(&mut memory, b"battery staple", &theirs));
        assert!(!verify_with(&mut memory, b"battery", &theirs));
        assert!(!verify_with(&mut memory, b"x", "not a hash"));
        assert_eq!(memory.len(), Params::default().block_count());
    }
}
