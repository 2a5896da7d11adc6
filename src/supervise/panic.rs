//! A panic hook that records panics of supervised actors (their message, their place and
//! the delivery being handled) instead of printing them: the supervisor reports each once,
//! with the actor's name, through `tracing`, and on stderr when the program installed no
//! tracing subscriber. Panics elsewhere go to the hook that was there before. It is the one
//! process-wide thing the runtime installs unasked: supervision needs it to blame a message.

use std::cell::{Cell, RefCell};
use std::panic::PanicHookInfo;
use std::sync::Once;

thread_local! {
    static SUPERVISED: Cell<bool> = const { Cell::new(false) };
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the hook once per process.
pub(crate) fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
            if SUPERVISED.with(Cell::get) {
                let place =
                    info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
                let text = format!("{}{place}", payload_text(info.payload()));
                super::blame::note_panic(&text);
                LAST.with(|last| *last.borrow_mut() = Some(text));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f` with panics recorded rather than printed.
pub(crate) fn supervised<R>(f: impl FnOnce() -> R) -> R {
    let was = SUPERVISED.with(|s| s.replace(true));
    let out = f();
    SUPERVISED.with(|s| s.set(was));
    out
}

/// The message and place of the last panic recorded on this thread.
pub(crate) fn take_last(payload: &(dyn std::any::Any + Send)) -> String {
    LAST.with(|last| last.borrow_mut().take()).unwrap_or_else(|| payload_text(payload))
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}

/// Runs `f`, turning a panic into its message and place (not printed: the caller reports it).
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    install_hook();
    supervised(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)))
        .map_err(|p| take_last(p.as_ref()))
}

/// Logs an error with `tracing`, and on stderr too when the program installed no tracing
/// subscriber (where the log line would go nowhere).
pub(crate) fn report_error(message: &str) {
    tracing::error!("{message}");
    if !tracing::dispatcher::has_been_set() {
        eprintln!("arachne: {message}");
    }
}
