//! How records become bytes and back (JSON values, big-endian counts), and
//! the plumbing that carries a [`StoreError`] out of a transaction.

use serde::{Deserialize, Serialize};

use super::kv::{IVec, TxError};
use super::{Result, StoreError};

pub(super) type TxResult<T> = std::result::Result<T, TxError<StoreError>>;

/// Aborts the transaction with `e`, which [`from_tx`] hands back.
pub(super) fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(TxError::Abort(e))
}

pub(super) fn from_tx(e: TxError<StoreError>) -> StoreError {
    match e {
        TxError::Abort(e) => e,
        TxError::Storage(e) => StoreError::Storage(e),
    }
}

pub(super) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode(e.to_string()))
}

/// [`decode`] inside a transaction: a record that cannot be read aborts it.
pub(super) fn decode_tx<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> TxResult<T> {
    decode(bytes).or_else(abort)
}

pub(super) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising these plain structs to JSON cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

/// A count in `meta`: 8 bytes, big-endian; 0 when absent.
pub(super) fn read_u64(v: Option<IVec>) -> Result<u64> {
    match v {
        None => Ok(0),
        Some(b) => {
            let arr: [u8; 8] = b
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Decode(format!("a count of {} bytes, not 8", b.len())))?;
            Ok(u64::from_be_bytes(arr))
        }
    }
}
