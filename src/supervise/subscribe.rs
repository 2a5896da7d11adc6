//! `ctx.subscribe(&topic)`: a topic read by an actor's [`Handler`], through a subscription
//! that survives the actor's restarts and whose end does not stop the actor.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix::{Actor, AsyncContext, Context, Handler, Message};

use crate::bus::{Overflow, Subscription, Topic};

/// The buffer of a subscription made with [`ContextExt::subscribe`].
pub const SUBSCRIBE_CAPACITY: usize = 256;

/// One message of a topic, as [`ContextExt::subscribe`] hands it to the actor's
/// `Handler<Published<T>>`.
#[derive(Debug)]
pub struct Published<T>(pub Arc<T>);

impl<T: 'static> Message for Published<T> {
    type Result = ();
}

impl<T> std::ops::Deref for Published<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A supervised child's subscriptions, by topic name and message type.
#[derive(Default)]
pub(crate) struct Attachments(Mutex<HashMap<(String, std::any::TypeId), Arc<dyn Any + Send + Sync>>>);

impl std::fmt::Debug for Attachments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Attachments")
    }
}

thread_local! {
    /// The attachments of the supervised child being polled on this thread.
    static CURRENT: RefCell<Option<Arc<Attachments>>> = const { RefCell::new(None) };
}

/// Runs `f` (a poll of a supervised child) with its attachments reachable.
pub(crate) fn within<R>(attachments: &Arc<Attachments>, f: impl FnOnce() -> R) -> R {
    let was = CURRENT.with(|c| c.replace(Some(attachments.clone())));
    let out = f();
    CURRENT.with(|c| *c.borrow_mut() = was);
    out
}

/// The subscription of the child being polled to `topic`: the one it made before its
/// restart, or a new one.
fn attached<T: Send + Sync + 'static>(topic: &Topic<T>, overflow: Overflow) -> Arc<Subscription<T>> {
    let new = || Arc::new(topic.subscribe(SUBSCRIBE_CAPACITY, overflow));
    CURRENT.with(|c| {
        let Some(attachments) = c.borrow().clone() else { return new() };
        let mut map = attachments.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = (topic.name().to_string(), std::any::TypeId::of::<T>());
        let entry = map.entry(key).or_insert_with(|| new() as Arc<dyn Any + Send + Sync>).clone();
        entry.downcast::<Subscription<T>>().unwrap_or_else(|_| new())
    })
}

/// Helpers on an actor's context.
pub trait ContextExt<A: Actor<Context = Context<A>>> {
    /// Reads `topic` through the actor's `Handler<Published<T>>`. Call it in
    /// `Actor::started`: under a supervisor (a runtime's actor), the subscription is made
    /// once and kept across restarts (`started` runs again and re-attaches to it, so nothing
    /// published meanwhile is lost); when the topic closes the stream ends without stopping
    /// the actor, so an actor may read several topics. The buffer holds
    /// [`SUBSCRIBE_CAPACITY`] messages; a full buffer makes publishers wait
    /// ([`Overflow::Block`]).
    ///
    /// ```no_run
    /// use actix::prelude::*;
    /// use arachne::crawl::PageItems;
    /// use arachne::bus::Topic;
    /// use arachne::supervise::{ContextExt, Published};
    ///
    /// struct Counter { items: Topic<PageItems>, pages: u64 }
    /// impl Actor for Counter {
    ///     type Context = Context<Self>;
    ///     fn started(&mut self, ctx: &mut Context<Self>) {
    ///         ctx.subscribe(&self.items);
    ///     }
    /// }
    /// impl Supervised for Counter {}
    /// impl Handler<Published<PageItems>> for Counter {
    ///     type Result = ();
    ///     fn handle(&mut self, _page: Published<PageItems>, _: &mut Context<Self>) {
    ///         self.pages += 1;
    ///     }
    /// }
    /// ```
    fn subscribe<T>(&mut self, topic: &Topic<T>)
    where
        T: Send + Sync + 'static,
        A: Handler<Published<T>>,
    {
        self.subscribe_with(topic, Overflow::Block);
    }

    /// [`ContextExt::subscribe`] with another overflow policy.
    fn subscribe_with<T>(&mut self, topic: &Topic<T>, overflow: Overflow)
    where
        T: Send + Sync + 'static,
        A: Handler<Published<T>>;
}

impl<A: Actor<Context = Context<A>>> ContextExt<A> for Context<A> {
    fn subscribe_with<T>(&mut self, topic: &Topic<T>, overflow: Overflow)
    where
        T: Send + Sync + 'static,
        A: Handler<Published<T>>,
    {
        let subscription = attached(topic, overflow);
        let stream = futures::StreamExt::map(Subscription::shared_stream(subscription), Published);
        self.add_message_stream(stream);
    }
}
