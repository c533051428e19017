//! [`LayoutStamp`]: which layout a mapped segment's data has, recorded at create and checked
//! at open.

use std::fmt;

/// Which layout a mapped segment's data has: a version the application chooses and a hash of
/// the size, the alignment and a name of the type that lives in it. Recorded in the header
/// at create ([`FileOptions::layout`](super::FileOptions::layout),
/// [`MemfdOptions::layout`](super::MemfdOptions::layout) on Linux); a peer that opens the
/// segment expecting another stamp ([`FileOptions::layout`](super::FileOptions::layout),
/// [`ReceiveOptions::layout`](super::ReceiveOptions::layout)) gets
/// [`ErrorKind::Layout`](crate::ErrorKind::Layout) instead of reading garbage (peers that
/// upgrade one side first crash on exactly that).
///
/// The hash is FNV-1a (64 bits) over the size and the alignment (8 bytes each, little
/// endian) and the name's bytes: the same in every build, on every platform, in C. It is
/// never 0 (a stamp of version 0 and hash 0 means "none" in the header).
///
/// ```
/// use qshm::mapped::{FileOptions, LayoutStamp};
///
/// #[repr(C)]
/// struct Telemetry { seq: u64, values: [f32; 14] }
///
/// let stamp = LayoutStamp::of::<Telemetry>("Telemetry", 2);
/// let seg = FileOptions::new().layout(stamp).create_temporary(4096)?;
/// assert_eq!(seg.layout_stamp(), Some(stamp));
/// let v1 = LayoutStamp::of::<Telemetry>("Telemetry", 1);
/// let err = FileOptions::new().layout(v1).open(seg.path().unwrap()).unwrap_err();
/// assert_eq!(err.kind(), qshm::ErrorKind::Layout);
/// # Ok::<(), qshm::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LayoutStamp {
    version: u32,
    hash: u64,
}

impl LayoutStamp {
    /// The stamp of type `T` under `name` (say, its name in your protocol), at `version`.
    pub fn of<T>(name: &str, version: u32) -> LayoutStamp {
        LayoutStamp::from_parts(
            version,
            std::mem::size_of::<T>(),
            std::mem::align_of::<T>(),
            name,
        )
    }

    /// The stamp of a layout described by hand (a C struct's `sizeof` and `_Alignof`, say).
    pub fn from_parts(version: u32, size: usize, align: usize, name: &str) -> LayoutStamp {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut hash = OFFSET;
        let bytes = (size as u64)
            .to_le_bytes()
            .into_iter()
            .chain((align as u64).to_le_bytes())
            .chain(name.bytes());
        for b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(PRIME);
        }
        LayoutStamp {
            version,
            hash: hash.max(1),
        }
    }

    /// A stamp given as its two numbers (as the header stores them).
    pub const fn from_raw(version: u32, hash: u64) -> LayoutStamp {
        LayoutStamp { version, hash }
    }

    /// The application's version number.
    pub const fn version(self) -> u32 {
        self.version
    }

    /// The hash of size, alignment and name.
    pub const fn hash(self) -> u64 {
        self.hash
    }

    pub(crate) fn raw(self) -> (u32, u64) {
        (self.version, self.hash)
    }

    /// The stamp a header records; `None` for (0, 0).
    pub(crate) fn from_header((version, hash): (u32, u64)) -> Option<LayoutStamp> {
        ((version, hash) != (0, 0)).then_some(LayoutStamp { version, hash })
    }
}

impl fmt::Debug for LayoutStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LayoutStamp {{ version: {}, hash: {:#018x} }}",
            self.version, self.hash
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_fixed_and_tell_layouts_apart() {
        // Fixed here (computed independently) so that a change of the hash is noticed: C
        // peers compute the same numbers.
        let a = LayoutStamp::from_parts(1, 8, 8, "u64");
        assert_eq!(a.hash(), 0xa5da_1340_4ef9_a232);
        // The type's own size and alignment: a u64 is 4-aligned on i686, and its stamp there
        // differs from x86_64's, as a layout that differs should.
        let here = std::mem::align_of::<u64>();
        assert_eq!(
            LayoutStamp::of::<u64>("u64", 1),
            LayoutStamp::from_parts(1, 8, here, "u64")
        );
        assert_eq!(a.hash(), LayoutStamp::from_parts(7, 8, 8, "u64").hash());
        assert_ne!(a, LayoutStamp::from_parts(2, 8, 8, "u64"));
        assert_ne!(a.hash(), LayoutStamp::from_parts(1, 16, 8, "u64").hash());
        assert_ne!(a.hash(), LayoutStamp::from_parts(1, 8, 4, "u64").hash());
        assert_ne!(a.hash(), LayoutStamp::from_parts(1, 8, 8, "i64").hash());
        assert_eq!(LayoutStamp::from_header((0, 0)), None);
        assert_eq!(LayoutStamp::from_header(a.raw()), Some(a));
    }
}
