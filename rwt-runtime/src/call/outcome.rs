//! What one attempt came to, in every mode and for commands.

use std::io;

use serde::de::DeserializeOwned;

use crate::call::process::Status;
use crate::options::Checked;
use crate::wire::frame::Kind;
use crate::wire::handover;

use crate::limits::Limit;
use crate::os::stuck::Stuck;
use crate::os::usage::Usage;

/// What one attempt came to.
#[derive(Debug)]
pub(crate) enum Outcome<R> {
    /// The function's value.
    Value(R),
    /// The function's value, which counts as a failed attempt (an `Err`).
    Failed(R),
    /// The deadline passed; `orphan` is the pid left running (kill = false),
    /// `stuck` what it was doing then.
    Timeout {
        orphan: Option<u32>,
        stuck: Option<Stuck>,
    },
    /// The function panicked.
    Panicked(String),
    /// The child ended without a result.
    Crashed {
        signal: Option<i32>,
        exit_code: Option<i32>,
    },
    /// The result could not cross the process boundary.
    Codec(String),
    /// No child could be started (or watched).
    Spawn(io::Error),
    /// `kill_all` ran: the child was killed.
    Cancelled,
    /// The attempt went over a limit beyond time.
    Limit(Limit),
    /// A command's status was taken by someone else's wait: it ended, how
    /// is unknown. Not retried (it may have done its work).
    Lost,
}

/// An attempt's outcome, with what its child used if it was reaped.
#[derive(Debug)]
pub(crate) struct Ended<R> {
    pub outcome: Outcome<R>,
    pub usage: Option<Usage>,
}

impl<R> From<Outcome<R>> for Ended<R> {
    /// An outcome without a reaped child.
    fn from(outcome: Outcome<R>) -> Self {
        Ended {
            outcome,
            usage: None,
        }
    }
}

/// How waiting for the child ended.
pub(crate) enum Waited {
    Cancelled,
    Frame,
    Died,
    Timeout,
    BadFrame(String),
    Io(io::Error),
}

impl<R: DeserializeOwned> Outcome<R> {
    /// What a complete frame of `kind` with `body` says, for a call with
    /// `opts`.
    /// `headless`: see [`crate::wire::reader::Frame`].
    pub(crate) fn from_frame(kind: Kind, body: Vec<u8>, headless: bool, opts: &Checked) -> Self {
        match kind {
            Kind::Value => decoded(body, headless, Outcome::Value),
            Kind::Failed => decoded(body, headless, Outcome::Failed),
            Kind::Panic => Outcome::Panicked(String::from_utf8_lossy(&body).into_owned()),
            Kind::EncodeError => Outcome::Codec(String::from_utf8_lossy(&body).into_owned()),
            // Only from a child that had the limit armed.
            Kind::MemoryLimit => match opts.limits.memory {
                Some(bytes) => Outcome::Limit(Limit::Memory { bytes }),
                None => Outcome::Codec("malformed result frame (kind byte 0x4d)".into()),
            },
            Kind::CpuLimit => match opts.cpu_f64 {
                Some(secs) => Outcome::Limit(Limit::Cpu { secs }),
                None => Outcome::Codec("malformed result frame (kind byte 0x43)".into()),
            },
            // Only a pool worker says it is leaving, and the pool deals
            // with that before here.
            Kind::Leaving => Outcome::Codec("malformed result frame (kind byte 0x4c)".into()),
        }
    }
}

impl<R> Outcome<R> {
    /// A child that ended, with `status`, without a result.
    pub(crate) fn from_status(status: Status) -> Self {
        match status {
            Status::Exited(code) => Outcome::Crashed {
                signal: None,
                exit_code: Some(code),
            },
            Status::Signaled(sig) => Outcome::Crashed {
                signal: Some(sig),
                exit_code: None,
            },
            Status::Lost => Outcome::Crashed {
                signal: None,
                exit_code: None,
            },
        }
    }
}

fn decoded<R: DeserializeOwned>(
    body: Vec<u8>,
    headless: bool,
    wrap: fn(R) -> Outcome<R>,
) -> Outcome<R> {
    match handover::decode_owned(body, headless) {
        Ok(value) => wrap(value),
        Err(detail) => Outcome::Codec(detail),
    }
}
