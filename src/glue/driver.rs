//! One driver for every token cache: the core's [`Plan`] is carried out here, and only
//! here, for the client, the gateway's isolate cache and the broker object alike.
//!
//! What differs between them is split in two traits:
//! - [`Host`]: the runtime. How a waiter waits and is woken, how a flight is kept
//!   running past the request that started it, and how long a waiter trusts a flight
//!   it did not start.
//! - [`Flights`]: the cache. Where it lives (the client's also publishes fresh tokens to
//!   its JS fast path), how a flight gets a token, and what follows a flight's end.
//!
//! Modelled on quinn's `Runtime` trait (one driver, a small trait per runtime) and on
//! rustls's unbuffered API (a state that hands its holder the next duty): a flight is a
//! [`Ticket`], and the one place that runs it ([`fly`]) spends it on
//! [`TokenCache::finish`].

use std::future::Future;
use std::rc::Rc;

use super::js::{now_ms, Timer};
use crate::core::cache::{cooldown_error, Event, FlightId, Plan, Ticket, TokenCache};
use crate::core::error::{ErrorCode, VccError};
use crate::core::secret::AccessToken;
use crate::core::token::Token;

/// What a flight ends with, for each of its waiters.
pub type Outcome = Result<AccessToken, VccError>;

/// What the driver needs of the runtime a cache runs in.
pub trait Host {
    /// What the cache keeps for each waiter.
    type Waiter: 'static;

    /// A new waiter: what the cache keeps, and what its caller awaits. The wait ends
    /// with the flight's outcome, or `None` when the flight was given up on. (No
    /// `self`: the wait must not borrow the host, which lives for one call.)
    fn waiter() -> (Self::Waiter, impl Future<Output = Option<Outcome>> + 'static);

    /// Ends a waiter's wait with the flight's outcome, or with `None` (plan again).
    fn wake(waiter: Self::Waiter, outcome: Option<&Outcome>);

    /// Runs a flight to its end, even past the request that started it.
    fn spawn(&self, flight: impl Future<Output = ()> + 'static);

    /// How long a waiter trusts a flight that another request started, if not for
    /// ever: past it the waiters give up on the flight together and plan again.
    fn patience_ms(&self) -> Option<u64>;
}

/// The waiter type of `F`'s host.
pub type WaiterOf<F> = <<F as Flights>::Host as Host>::Waiter;

/// A token cache the driver runs.
pub trait Flights: Sized + 'static {
    /// What a token is for.
    type Key: Ord + Clone + 'static;
    /// The runtime it runs in.
    type Host: Host;

    /// Runs `f` on the cache, for a step that concerns `key`. The only way to the
    /// cache, so whatever must follow a change (the client withdraws a token it
    /// published) follows every change.
    fn with<R>(&self, key: &Self::Key, f: impl FnOnce(&mut TokenCache<Self::Key, WaiterOf<Self>>) -> R) -> R;

    /// A flight's work: a token for `key`.
    fn fetch(&self, key: &Self::Key) -> impl Future<Output = Result<Token, VccError>>;

    /// After a flight's end is recorded and its waiters are woken.
    fn landed(self: &Rc<Self>, _key: &Self::Key, _event: &Event, _now: u64) {}
}

/// How a call got its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Got {
    /// From the cache, without a wait.
    Cached,
    /// From a flight this call started.
    Fetched,
    /// From a flight another call started.
    Joined,
}

/// One plan carried out.
pub enum Step<W> {
    /// The cached token.
    Ready(AccessToken),
    /// A flight's outcome to wait for (`None`: it was given up on), and whether this
    /// call started the flight.
    Pending(W, Got),
}

/// A token for `key` for `caller` (see `TokenCache::get`), and how it was had: the plan
/// carried out, and once more if the flight waited on was given up on.
pub async fn token<F: Flights>(
    flights: &Rc<F>,
    key: &F::Key,
    caller: &str,
    host: &F::Host,
) -> Result<(AccessToken, Got), VccError> {
    for _ in 0..2 {
        match step(flights, key, caller, host)? {
            Step::Ready(token) => return Ok((token, Got::Cached)),
            Step::Pending(wait, got) => {
                if let Some(outcome) = wait.await {
                    return outcome.map(|t| (t, got));
                }
            }
        }
    }
    Err(VccError::new(ErrorCode::Timeout, "no token: the token fetch did not finish in time"))
}

/// The cache's plan for `key` and `caller`, carried out: the cached token at once (a
/// background refresh started if due), a wait for a flight (started if there is none),
/// or the cooldown's error.
pub fn step<F: Flights>(
    flights: &Rc<F>,
    key: &F::Key,
    caller: &str,
    host: &F::Host,
) -> Result<Step<impl Future<Output = Option<Outcome>> + 'static>, VccError> {
    let now = now_ms();
    let (ticket, id) = match flights.with(key, |c| c.get(key, caller, now)) {
        Plan::Use => return current(flights, key).map(Step::Ready),
        Plan::UseAndRefresh(ticket) => {
            fly(flights, key, ticket, host);
            return current(flights, key).map(Step::Ready);
        }
        Plan::Cooldown(until) => return Err(cooldown_error(until, now)),
        Plan::Fetch(ticket) => {
            let id = ticket.id();
            (Some(ticket), id)
        }
        Plan::Wait(id) => (None, id),
    };
    let got = if ticket.is_some() { Got::Fetched } else { Got::Joined };
    Ok(Step::Pending(join(flights, key, ticket, id, host), got))
}

/// For a refresh timer or alarm: starts `key`'s refresh if one is due (refresh-ahead
/// or later) and gives its wait; `None` when the token is fresh or the key cools down.
/// A flight already under way is waited on like any caller's. (No caller: a timer is
/// refused only by the key's own brake.)
pub fn refresh_due<F: Flights>(
    flights: &Rc<F>,
    key: &F::Key,
    host: &F::Host,
) -> Option<impl Future<Output = Option<Outcome>> + 'static> {
    let (ticket, id) = match flights.with(key, |c| c.get(key, "", now_ms())) {
        Plan::UseAndRefresh(ticket) | Plan::Fetch(ticket) => {
            let id = ticket.id();
            (Some(ticket), id)
        }
        Plan::Wait(id) => (None, id),
        Plan::Use | Plan::Cooldown(_) => return None,
    };
    Some(join(flights, key, ticket, id, host))
}

/// Waits on flight `id`, which is ours to run when we hold its `ticket`; on one we did
/// not start, for the host's patience at most.
fn join<F: Flights>(
    flights: &Rc<F>,
    key: &F::Key,
    ticket: Option<Ticket>,
    id: FlightId,
    host: &F::Host,
) -> impl Future<Output = Option<Outcome>> + 'static {
    let (waiter, wait) = F::Host::waiter();
    // `get` has just reported this flight and nothing ran since, so it is there; if it
    // were not, the waiter is told to plan again rather than left waiting.
    if let Err(w) = flights.with(key, |c| c.wait(key, id, waiter)) {
        F::Host::wake(w, None);
    }
    let patience = match ticket {
        Some(ticket) => {
            fly(flights, key, ticket, host);
            None
        }
        None => host.patience_ms().map(|ms| give_up_after(flights, key, id, ms)),
    };
    async move {
        let _patience = patience;
        wait.await
    }
}

/// Runs the flight `ticket` stands for: fetch, record, wake its waiters, then the
/// cache's own follow-up.
fn fly<F: Flights>(flights: &Rc<F>, key: &F::Key, ticket: Ticket, host: &F::Host) {
    let (flights, key) = (flights.clone(), key.clone());
    host.spawn(async move {
        let result = flights.fetch(&key).await;
        let now = now_ms();
        let finished = flights.with(&key, |c| c.finish(&key, ticket, result, now));
        for w in finished.waiters {
            F::Host::wake(w, Some(&finished.outcome));
        }
        flights.landed(&key, &finished.event, now);
    });
}

/// A timer that, unless dropped first, gives up on flight `id` for all its waiters:
/// they plan again, and one of them starts a new flight.
fn give_up_after<F: Flights>(flights: &Rc<F>, key: &F::Key, id: FlightId, ms: u64) -> Timer {
    let (weak, key) = (Rc::downgrade(flights), key.clone());
    Timer::new(ms, true, move || {
        if let Some(flights) = weak.upgrade() {
            for w in flights.with(&key, |c| c.abandon(&key, id)) {
                F::Host::wake(w, None);
            }
        }
    })
}

/// The cached token for `key` (after a plan that said there is one).
fn current<F: Flights>(flights: &Rc<F>, key: &F::Key) -> Result<AccessToken, VccError> {
    flights
        .with(key, |c| c.current(key).map(|(t, _)| t.value.clone()))
        .ok_or_else(|| VccError::new(ErrorCode::TokenEndpoint, "no token after a plan that said there was one"))
}
