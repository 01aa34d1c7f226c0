//! Debug events go through `tracing` with target `rwt`: spawn, result,
//! timeout, kill, retry, orphan, and each reaped child's usage.

use std::sync::{Arc, Mutex};

use rwt::timeout;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Target, message and the names of the other fields of one event.
type Recorded = (String, String, Vec<String>);

/// Records every event.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Recorded>>>);

#[derive(Default)]
struct Message(String, Vec<String>);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else {
            self.1.push(field.name().to_owned());
        }
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut m = Message::default();
        event.record(&mut m);
        self.0
            .lock()
            .unwrap()
            .push((event.metadata().target().to_owned(), m.0, m.1));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Recorder {
    fn messages(&self) -> Vec<String> {
        let events = self.0.lock().unwrap();
        assert!(events.iter().all(|(t, ..)| t == "rwt"), "{events:?}");
        events.iter().map(|(_, m, _)| m.clone()).collect()
    }

    /// The field names of each event with this message.
    fn fields(&self, message: &str) -> Vec<Vec<String>> {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .filter(|(_, m, _)| m == message)
            .map(|(.., f)| f.clone())
            .collect()
    }
}

#[timeout(secs = 2.0)]
fn fine() -> u8 {
    1
}

#[timeout(secs = 0.1, ntries = 2)]
fn late() -> u8 {
    std::thread::sleep(std::time::Duration::from_secs(5));
    0
}

#[timeout(secs = 0.1, kill = false)]
fn left_behind() -> u8 {
    std::thread::sleep(std::time::Duration::from_millis(300));
    0
}

#[test]
fn spawn_result_timeout_kill_retry_and_orphan_are_reported() {
    let rec = Recorder::default();
    tracing::subscriber::with_default(rec.clone(), || {
        fine().unwrap();
        assert!(late().unwrap_err().is_timeout());
        assert!(left_behind().unwrap_err().is_timeout());
    });
    let m = rec.messages();
    let count = |s: &str| m.iter().filter(|x| x.as_str() == s).count();
    assert_eq!(count("child started"), 4, "{m:?}");
    assert_eq!(count("result received"), 1, "{m:?}");
    assert_eq!(count("timed out, killing"), 2, "{m:?}");
    assert_eq!(count("retrying"), 1, "{m:?}");
    assert_eq!(count("timed out, left running as an orphan"), 1, "{m:?}");
    // Every child reaped within the call (not the orphan, reaped later by
    // the reaper thread, perhaps after the recorder is gone) says what it
    // used.
    let reaped = rec.fields("child reaped");
    assert!(reaped.len() >= 3, "{m:?}");
    for fields in reaped {
        for name in ["pid", "user_us", "system_us", "max_rss", "wall_us"] {
            assert!(
                fields.iter().any(|f| f == name),
                "{name} missing: {fields:?}"
            );
        }
    }
}
