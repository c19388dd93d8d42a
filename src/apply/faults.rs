//! Faults injected by the tests.

use crate::error::{Error, Result};
use std::cell::Cell;
use std::io;

/// Faults injected by the tests (`NEARDUP_TEST_FAULTS`, read by the
/// binary): `abort_at=N` aborts the process at the Nth checkpoint (just
/// before or after a change, between a copy and the removal of its source),
/// `enospc_after=BYTES` makes copies fail with "no space left" once that
/// many bytes were written, `force_copy` makes moves copy as if across file
/// systems.
#[doc(hidden)]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    pub abort_at: Option<u64>,
    pub enospc_after: Option<u64>,
    pub force_copy: bool,
}

impl Faults {
    pub fn parse(spec: &str) -> Result<Faults> {
        let mut f = Faults::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let num = || {
                v.parse::<u64>()
                    .map_err(|_| Error::Param(format!("fault {k}: bad number {v:?}")))
            };
            match k {
                "abort_at" => f.abort_at = Some(num()?),
                "enospc_after" => f.enospc_after = Some(num()?),
                "force_copy" => f.force_copy = true,
                _ => return Err(Error::Param(format!("unknown fault {k:?}"))),
            }
        }
        Ok(f)
    }
}

/// The faults of one run, with their counters.
#[derive(Default)]
pub(super) struct Injector {
    pub(super) faults: Faults,
    pub(super) checkpoints: Cell<u64>,
    pub(super) written: Cell<u64>,
}

impl Injector {
    pub(super) fn checkpoint(&self) {
        let n = self.checkpoints.get() + 1;
        self.checkpoints.set(n);
        if self.faults.abort_at == Some(n) {
            // A kill: no unwinding, no clean-up, no flush beyond what was synced.
            std::process::abort();
        }
    }
    pub(super) fn wrote(&self, n: u64) -> io::Result<()> {
        let total = self.written.get() + n;
        self.written.set(total);
        match self.faults.enospc_after {
            Some(limit) if total > limit => Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "No space left on device (injected)",
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse() {
        let f = Faults::parse("abort_at=3, enospc_after=10,force_copy").unwrap();
        assert_eq!(
            f,
            Faults {
                abort_at: Some(3),
                enospc_after: Some(10),
                force_copy: true
            }
        );
        assert!(Faults::parse("abort_at=x").is_err());
        assert!(Faults::parse("explode").is_err());
        assert_eq!(Faults::parse("").unwrap(), Faults::default());
    }
}
