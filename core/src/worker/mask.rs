//! Hides secret values (`git ci worker --env-file`) in what the worker
//! stores: see [`crate::mask`], which the job runner uses as well.

pub use crate::mask::Masker;
