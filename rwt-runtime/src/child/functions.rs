//! Exec mode's function table: every exec- and pool-mode function
//! registers itself from a constructor placed in `.init_array.00200`
//! (`register_exec_fn!`, below), before the entry
//! (`child/entry.rs`) runs. A child looks a request's function up
//! here by id, never by address.

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, Ordering};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::child::body;
use crate::wire::codec;
use crate::wire::frame::Kind;
use crate::wire::protocol::CHANNEL_FD;

/// A frame built in the child: what it sends back.
pub struct ExecFrame(pub(crate) Kind, pub(crate) Vec<u8>);

/// One exec-mode function, as the generated code registers it.
pub struct ExecFn {
    id: u64,
    pub(crate) run: fn(&[u8]) -> ExecFrame,
    next: AtomicPtr<ExecFn>,
    /// Whether it lives in the main executable: 0 unknown, 1 yes, 2 no.
    in_main: AtomicU8,
    /// Another registered function has the same id: neither may run.
    ambiguous: AtomicBool,
}

impl ExecFn {
    /// A table entry for the function with this id.
    pub const fn new(id: u64, run: fn(&[u8]) -> ExecFrame) -> Self {
        ExecFn {
            id,
            run,
            next: AtomicPtr::new(ptr::null_mut()),
            in_main: AtomicU8::new(0),
            ambiguous: AtomicBool::new(false),
        }
    }

    /// The function's stable id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Does another registered function share this one's id? Then a child
    /// could not tell which to run, and neither is called.
    pub(crate) fn is_ambiguous(&self) -> bool {
        self.ambiguous.load(Ordering::Acquire)
    }
}

/// Head of the table: a list of `'static` entries, pushed by
/// constructors, never popped.
static TABLE: AtomicPtr<ExecFn> = AtomicPtr::new(ptr::null_mut());

/// Adds `f` to the table (from its constructor). An entry whose id is
/// already taken by another marks both as ambiguous: calls of either fail
/// with `Error::Spawn` instead of running a function that was not called.
pub fn register(f: &'static ExecFn) {
    let node = ptr::from_ref(f).cast_mut();
    let mut head = TABLE.load(Ordering::Acquire);
    loop {
        if head == node {
            return;
        }
        f.next.store(head, Ordering::Relaxed);
        match TABLE.compare_exchange_weak(head, node, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => break,
            Err(now) => head = now,
        }
    }
    // Everything registered before `f` is behind it: of two entries with one
    // id, the later one finds the earlier.
    for other in entries(head).filter(|other| other.id == f.id) {
        other.ambiguous.store(true, Ordering::Release);
        f.ambiguous.store(true, Ordering::Release);
    }
}

/// The table from `at` on.
fn entries(mut at: *mut ExecFn) -> impl Iterator<Item = &'static ExecFn> {
    std::iter::from_fn(move || {
        // SAFETY: every pointer in the list comes from a `&'static ExecFn`
        // (see `register`); entries are never removed.
        let f = unsafe { at.as_ref() }?;
        at = f.next.load(Ordering::Acquire);
        Some(f)
    })
}

pub(crate) fn find(id: u64) -> Option<&'static ExecFn> {
    entries(TABLE.load(Ordering::Acquire)).find(|f| f.id == id)
}

/// Is `f` part of the main executable (not of a library loaded with
/// `dlopen`)? A child is a fresh run of the main executable: a function
/// that lives elsewhere cannot be found there.
pub(crate) fn in_main_executable(f: &'static ExecFn) -> bool {
    match f.in_main.load(Ordering::Relaxed) {
        1 => return true,
        2 => return false,
        _ => {}
    }
    let found = find_in_main_executable(f);
    f.in_main
        .store(if found { 1 } else { 2 }, Ordering::Relaxed);
    found
}

fn find_in_main_executable(f: &'static ExecFn) -> bool {
    use nix::libc::{dl_iterate_phdr, dl_phdr_info, size_t, PT_LOAD};
    use std::ffi::c_void;

    struct Query {
        addr: usize,
        found: bool,
    }

    unsafe extern "C" fn first_object(
        info: *mut dl_phdr_info,
        _size: size_t,
        data: *mut c_void,
    ) -> nix::libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info for the duration of
        // the call, and `data` is the `Query` given below.
        let (info, query) = unsafe { (&*info, &mut *data.cast::<Query>()) };
        // SAFETY: dlpi_phdr points at dlpi_phnum program headers.
        let headers =
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
        for h in headers.iter().filter(|h| h.p_type == PT_LOAD) {
            let start = info.dlpi_addr as usize + h.p_vaddr as usize;
            if (start..start + h.p_memsz as usize).contains(&query.addr) {
                query.found = true;
            }
        }
        1 // the main program comes first: stop after it
    }

    let mut query = Query {
        addr: ptr::from_ref(f) as usize,
        found: false,
    };
    // SAFETY: the callback matches dl_iterate_phdr's contract and only reads
    // what it is given; `query` outlives the call.
    unsafe { dl_iterate_phdr(Some(first_object), ptr::from_mut(&mut query).cast()) };
    query.found
}

/// The stable id of a function: FNV-1a of its path and signature.
#[must_use]
pub const fn function_id(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Runs an exec-mode function in the child: decodes its arguments to its
/// own types, calls it, and builds the frame of the outcome.
pub fn run_in_child<A, R>(
    args: &[u8],
    body: impl FnOnce(A) -> R,
    failed: fn(&R) -> bool,
) -> ExecFrame
where
    A: DeserializeOwned,
    R: Serialize,
{
    let args: A = match rmp_serde::from_slice(args) {
        Ok(a) => a,
        Err(e) => {
            let detail = format!("the child could not decode the arguments: {e}");
            return ExecFrame(Kind::EncodeError, detail.into_bytes());
        }
    };
    let (kind, bytes) = body::call(move || body(args), failed, CHANNEL_FD, codec::encode);
    ExecFrame(kind, bytes)
}

/// Registers an exec- or pool-mode function in the table: defines, in the
/// calling scope, `__RWT_FN` (its entry: the id of `$id_text`, and `$run`,
/// what a child runs) and `__RWT_REGISTER` (the constructor that adds it).
///
/// The constructor goes in `.init_array.00200`. The linker orders
/// `.init_array.NNNNN` sections by number, before the plain `.init_array`
/// that holds the entry (`child/entry.rs`) and after std's own at
/// `.00099`: the table is complete when the entry looks a request up. This
/// macro and the entry are the two halves of that contract, and live here
/// together; the attribute only names the macro.
#[doc(hidden)]
#[macro_export]
macro_rules! __register_exec_fn {
    ($run:expr, $id_text:expr) => {
        static __RWT_FN: $crate::__private::ExecFn =
            $crate::__private::ExecFn::new($crate::__private::function_id($id_text), $run);
        #[used]
        #[unsafe(link_section = ".init_array.00200")]
        static __RWT_REGISTER: extern "C" fn() = {
            extern "C" fn __rwt_register() {
                $crate::__private::register(&__RWT_FN)
            }
            __rwt_register
        };
    };
}
