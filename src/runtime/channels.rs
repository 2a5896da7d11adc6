//! Typed handles to the run's built-in topics, on the [`Bus`] an actor factory gets.

use crate::bus::{Bus, Firing, Topic, WrongType};
use crate::crawl::{Event, PageItems};

/// The crawl's own topics, by name and type, so no program spells either by hand. On the
/// bus of a [`Runtime::builder`](super::Runtime::builder) they exist from the start and
/// cannot fail; on a bus of your own, an `Err` means the name was taken with another type.
impl Bus {
    /// The `items` topic: one [`PageItems`] per parsed page.
    pub fn items(&self) -> Result<Topic<PageItems>, WrongType> {
        self.topic("items")
    }

    /// The `events` topic: failures, dead letters, restarts ([`Event`]).
    pub fn events(&self) -> Result<Topic<Event>, WrongType> {
        self.topic("events")
    }

    /// The `schedules` topic: one [`Firing`] per firing of the spec's schedules.
    pub fn schedules(&self) -> Result<Topic<Firing>, WrongType> {
        self.topic("schedules")
    }
}
