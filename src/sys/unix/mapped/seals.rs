//! File seals (`F_ADD_SEALS`, `F_GET_SEALS`) where the system has them (Linux, FreeBSD);
//! elsewhere (macOS, iOS) no descriptor is sealable: asking fails with `EINVAL`, as Linux
//! answers for a file that cannot be sealed.

#[cfg(qshm_memfd)]
pub(crate) use rustix::fs::{fcntl_add_seals as add, fcntl_get_seals as get, SealFlags};

#[cfg(not(qshm_memfd))]
pub(crate) use none::*;

#[cfg(not(qshm_memfd))]
mod none {
    use std::os::fd::AsFd;

    use rustix::io::Errno;

    /// The seals a file may carry (none can here).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct SealFlags(u32);

    impl SealFlags {
        pub(crate) const SEAL: SealFlags = SealFlags(1);
        pub(crate) const SHRINK: SealFlags = SealFlags(2);
        pub(crate) const WRITE: SealFlags = SealFlags(8);

        pub(crate) const fn empty() -> SealFlags {
            SealFlags(0)
        }

        pub(crate) const fn contains(self, other: SealFlags) -> bool {
            self.0 & other.0 == other.0
        }
    }

    impl std::ops::BitOr for SealFlags {
        type Output = SealFlags;

        fn bitor(self, other: SealFlags) -> SealFlags {
            SealFlags(self.0 | other.0)
        }
    }

    /// `F_GET_SEALS`: not sealable.
    pub(crate) fn get(_: impl AsFd) -> Result<SealFlags, Errno> {
        Err(Errno::INVAL)
    }

    /// `F_ADD_SEALS`: not sealable.
    pub(crate) fn add(_: impl AsFd, _: SealFlags) -> Result<(), Errno> {
        Err(Errno::INVAL)
    }
}
