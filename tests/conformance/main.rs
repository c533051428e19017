//! The backend conformance suite: Qt's tst_qsharedmemory, ported, run once per key type.
//!
//! Every test takes the [`KeyType`] under test; `instantiate!` emits one module of `#[test]`s
//! per backend. Multi-process tests re-run this binary as a child (`child_entry`).

#[path = "../util/mod.rs"]
mod util;

mod segment;

use std::time::Duration;

use qshm::KeyType;

pub(crate) fn watchdog(name: &'static str) -> util::Watchdog {
    util::Watchdog::new(name, Duration::from_secs(120))
}

macro_rules! instantiate {
    ($module:ident, $key_type:expr) => {
        instantiate!($module, $key_type;
            constructor,
            native_key,
            legacy_key,
            create,
            attach,
            change_key_type,
            lock,
            lock_through_a_second_object,
            a_forked_copy_of_a_guard_does_not_unlock,
            detach_does_not_wait_for_ever,
            remove_while_attached,
            empty_memory,
            read_only,
            attach_before_create_legacy,
            attach_before_create_native,
            simple_producer_consumer_read_only,
            simple_producer_consumer_read_write,
            simple_double_producer_consumer,
            simple_threaded_producer_consumer_1,
            simple_threaded_producer_consumer_5,
            simple_process_producer_consumer,
            use_too_much_memory,
            unique_key,
            create_with_same_key,
            orphan_after_crash_is_adopted,
            remove_orphan_cleans_up,
            create_does_not_reset_held_lock,
            try_lock_and_timeout,
            last_detach_removes_everything,
            force_remove_while_attached,
            reattach_after_the_lock_was_replaced,
        );
    };
    ($module:ident, $key_type:expr; $($name:ident),* $(,)?) => {
        mod $module {
            use super::*;

            fn t() -> KeyType {
                $key_type
            }

            $(
                #[test]
                fn $name() {
                    let _w = watchdog(stringify!($name));
                    segment::$name(t());
                }
            )*
        }
    };
}

#[cfg(unix)]
instantiate!(sysv, KeyType::SystemV);
#[cfg(unix)]
instantiate!(sysv_project_t, KeyType::from_raw(0x54).expect("systemv-84"));
#[cfg(unix)]
instantiate!(posix, KeyType::PosixRealtime);
// Windows: no fork.
#[cfg(windows)]
instantiate!(windows, KeyType::Windows;
    constructor,
    native_key,
    legacy_key,
    create,
    attach,
    change_key_type,
    lock,
    lock_through_a_second_object,
    detach_does_not_wait_for_ever,
    remove_while_attached,
    empty_memory,
    read_only,
    attach_before_create_legacy,
    attach_before_create_native,
    simple_producer_consumer_read_only,
    simple_producer_consumer_read_write,
    simple_double_producer_consumer,
    simple_threaded_producer_consumer_1,
    simple_threaded_producer_consumer_5,
    simple_process_producer_consumer,
    use_too_much_memory,
    unique_key,
    create_with_same_key,
    orphan_after_crash_is_adopted,
    remove_orphan_cleans_up,
    create_does_not_reset_held_lock,
    try_lock_and_timeout,
    last_detach_removes_everything,
    force_remove_while_attached,
    reattach_after_the_lock_was_replaced,
);

/// The child roles of this test binary; a no-op in a normal test run.
#[test]
fn child_entry() {
    if let Some(args) = util::child_role() {
        segment::child(&args);
        std::process::exit(0);
    }
}
