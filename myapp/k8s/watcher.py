"""The watcher of one worker group: one pod watch stream, one event stream, and a tick loop.

A Celery task only claims an attempt and creates its pods; from then on the watcher owns it
(`TaskAttempt.worker` is `k8s:GROUP`). It keeps every pod of the group in memory from a single
list+watch (resumed after 410 Gone with a fresh list), and:
- decides outcomes from pod changes and hands them to the Finisher (a small thread pool); the
  deletes after a recorded end go to the Cleaner (threads of their own: a finish never waits on them);
- heartbeats all attempts it owns in one UPDATE per interval (so the reconciler keeps them);
- deletes the pods of attempts the engine ended (stop, run timeout, lost) and of unknown attempts;
- enforces task deadlines, polls resource attempts' conditions, notices pods that never appear;
- keeps pod status and events for the run page.
While the pod watch fails (a forbidden list or watch, an API outage), the watcher says so (its log,
the run page: `container.watcher`, and /health through `report`) and reads the pods of its running
attempts one by one each tick instead, so outcomes and the "pod not found" rule keep working.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from myapp.k8s.cleanup import Cleaner, attempt_deletions, delete_attempt_objects, delete_quietly
from myapp.k8s.config import KubeConfig
from myapp.k8s.events import EventBook, parse_event
from myapp.k8s.launcher import Launcher, LaunchError, Raw
from myapp.k8s.logs import LogHub
from myapp.k8s.manifest import group_selector
from myapp.k8s.outcome import attempt_outcome
from myapp.k8s.podcache import PodCache
from myapp.k8s.pods import Outcome, PodView, parse_pod
from myapp.k8s.status import MISSING, attempt_status
from myapp.k8s.stream import ListWatch
from myapp.k8s.tracked import AttemptBook, Finisher, TrackedAttempt

log = logging.getLogger(__name__)
Now = Callable[[], datetime]
Report = Callable[[dict[str, object]], None]
SWEEP_WINDOW = 1000  # attempt ids looked back at for attempts ended before this watcher loaded them
SETTLED_MEMORY = 100_000
POLL_BATCH = 200  # pods read per tick while the pod watch fails


class Watcher:
    """Feeds pod changes of one worker group into the engine."""

    def __init__(
        self,
        cfg: KubeConfig,
        launcher: Launcher,
        book: AttemptBook,
        finisher: Finisher,
        hub: LogHub,
        now: Now,
        *,
        workers: int = 8,
        cleanup_workers: int = 4,
        cleanup_capacity: int = 1000,
        missing_grace: float = 60.0,
        kill_grace: int = 5,
        report: Report | None = None,
    ) -> None:
        self.cfg, self.launcher, self.book, self.finisher, self.hub, self.now = cfg, launcher, book, finisher, hub, now
        self.report = report  # gets watch_state() with every heartbeat (published for /health)
        self.missing_grace, self.kill_grace = missing_grace, kill_grace
        self.pods = PodCache()
        self.tracked: dict[int, TrackedAttempt] = {}
        self.busy: set[int] = set()
        self.dirty: set[int] = set()
        self.events = EventBook()
        self.lock = threading.RLock()
        self.status_lock = threading.Lock()  # status writes in order: a tick's never lands after a finish's
        self.wake = threading.Event()
        self.synced = threading.Event()  # the pod cache holds a full list (missing pods mean something)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="finish")
        self.cleaner = Cleaner(launcher, workers=cleanup_workers, capacity=cleanup_capacity)
        self.pod_stream = ListWatch(launcher, "pods", group_selector(cfg.group, cfg.installation), cfg.watch_timeout)
        self.event_stream = ListWatch(launcher, "events", "", cfg.watch_timeout)
        self.resources: dict[int, Raw | None] = {}
        self.settled: dict[int, None] = {}  # attempts this watcher finished or released (bounded, oldest first)
        self._window: int | None = None
        self.finished = 0
        self._last_beat: datetime | None = None
        self.notice = ""  # why the pod watch cannot be trusted now ("" while it is healthy)
        self._polled_absent: set[int] = set()  # attempts whose pods a poll found missing
        self._poll_from = 0
        self._failing_since: dict[str, datetime] = {}  # stream -> when it started failing
        self._report_failed = False

    # --- process loop ----------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Watch and tick until `stop` is set; finish in-flight work before returning."""
        streams = [
            threading.Thread(
                target=self.pod_stream.run,
                args=(stop, self.on_pod_event, self.on_pod_sync),
                name="watch-pods",
                daemon=True,
            ),
            threading.Thread(
                target=self.event_stream.run,
                args=(stop, self.on_event, self.on_event_sync),
                name="watch-events",
                daemon=True,
            ),
        ]
        for thread in streams:
            thread.start()
        while not stop.is_set():
            try:
                self.tick(self.now())
            except Exception:  # noqa: BLE001  a database or API outage must not end the watcher
                log.exception("watcher tick failed; retrying")
            self.wake.wait(self.cfg.heartbeat_interval)
            self.wake.clear()
        self.pod_stream.close()
        self.event_stream.close()
        self.pool.shutdown(wait=True)
        self.cleaner.close()

    # --- pods ------------------------------------------------------------------------
    def on_pod_event(self, kind: str, raw: Raw) -> None:
        """Apply one watch event (ADDED, MODIFIED, DELETED)."""
        self._apply(parse_pod(raw, gone=kind == "DELETED"))

    def on_pod_sync(self, items: list[Raw]) -> None:
        """Replace the cache after a (re)list: pods missing from it are gone."""
        listed = {str((raw.get("metadata") or {}).get("name")): raw for raw in items}
        vanished = [p for p in self.pods.all() if p.name not in listed and not p.gone]
        for raw in listed.values():
            self._apply(parse_pod(raw))
        for pod in vanished:
            self._apply(dataclasses.replace(pod, gone=True))
        self.synced.set()

    def _apply(self, pod: PodView) -> None:
        with self.lock:
            attempt = self.tracked.get(pod.attempt_id) if pod.attempt_id is not None else None
            quiet = pod.attempt_id in self.settled or pod.attempt_id in self.busy
            if pod.gone and attempt is None and (quiet or pod.attempt_id is None):
                self.pods.forget(pod.name)
            else:  # a pod gone before its attempt was loaded is kept: the next tick decides from it
                self.pods.put(pod)
            if attempt is not None:
                self.dirty.add(attempt.attempt_id)
        if not pod.gone:
            self.hub.observe(pod)
        if attempt is not None:
            self._decide(attempt)
        elif (pod.is_terminal or pod.gone) and not quiet:
            self.wake.set()  # an attempt not loaded yet: load it now rather than next interval

    def pods_of(self, attempt_id: int) -> list[PodView]:
        """Return the cached pods of an attempt."""
        return self.pods.of(attempt_id)

    # --- events ----------------------------------------------------------------------
    def on_event(self, kind: str, raw: Raw) -> None:
        """Keep an event if it concerns one of our objects."""
        if kind == "DELETED":
            return
        event = parse_event(raw)
        owner = self._owner(event.object_name)
        if owner is not None or event.object_name.startswith(f"{self.cfg.pod_prefix}-"):
            self.events.add(event)  # kept even before the pod's own watch event names its attempt
        if owner is not None:
            with self.lock:
                self.dirty.add(owner)

    def on_event_sync(self, items: list[Raw]) -> None:
        for raw in items:
            self.on_event("ADDED", raw)

    def _owner(self, name: str) -> int | None:
        pod = self.pods.get(name)
        if pod is not None:
            return pod.attempt_id
        with self.lock:
            return next((a.attempt_id for a in self.tracked.values() if name in a.object_names()), None)

    # --- the tick --------------------------------------------------------------------
    def tick(self, now: datetime) -> None:
        """Reconcile memory with the database: heartbeat, load, clean up, decide, save status."""
        seen = self.pods.all()  # before reading the database: see _delete_orphans
        running = self.book.running_ids()
        if self._last_beat is None or (now - self._last_beat).total_seconds() >= self.cfg.heartbeat_interval * 0.9:
            self.book.heartbeat(running, now)
            self._last_beat = now
        with self.lock:
            ended = [a for i, a in self.tracked.items() if i not in running and i not in self.busy]
            for attempt in ended:
                del self.tracked[attempt.attempt_id]
                self.busy.add(attempt.attempt_id)
            wanted = [i for i in running if i not in self.tracked or not self.tracked[i].launch]
        for attempt in ended:
            self.pool.submit(self._release, attempt)
        loaded = self.book.load(wanted) if wanted else {}
        with self.lock:
            self.tracked.update({i: a for i, a in loaded.items() if i not in self.busy})
            self.dirty.update(i for i in loaded if i not in self.busy)  # pod changes seen before the load
        self._delete_orphans(seen, running)
        self._sweep_ended(running)
        self._poll_if_degraded()
        for attempt in list(self.tracked.values()):
            self._check(attempt, now, loaded=attempt.attempt_id in loaded)
        self._save_status()
        if self._last_beat == now:  # as often as the heartbeat
            self._report(now, len(running))

    def watch_state(self, now: datetime, running: int = 0) -> dict[str, object]:
        """Return the health of this watcher's streams: for each, `ok` or its short error and since when."""
        streams: dict[str, object] = {}
        for stream in (self.pod_stream, self.event_stream):
            if stream.healthy:
                self._failing_since.pop(stream.what, None)
                streams[stream.what] = {"ok": True}
            else:
                since = self._failing_since.setdefault(stream.what, now)
                streams[stream.what] = {"ok": False, "error": stream.error_kind, "since": since.isoformat()}
        return {
            "group": self.cfg.group,
            "installation": self.cfg.installation,
            "at": now.isoformat(),
            "running": running,
            "cleanup_backlog": self.cleaner.backlog,  # ended attempts whose objects wait to be deleted
            "streams": streams,
            "fallback": "pods read one by one" if self.notice else "",
        }

    def _report(self, now: datetime, running: int) -> None:
        if self.report is None:
            return
        try:
            self.report(self.watch_state(now, running))
            self._report_failed = False
        except Exception as exc:  # noqa: BLE001  health reporting must never stop the watcher
            if not self._report_failed:
                log.warning("cannot publish the watcher's health: %s", exc)
            self._report_failed = True

    def _poll_if_degraded(self) -> None:
        notice = (
            ""
            if self.pod_stream.healthy
            else f"the pod watch fails ({self.pod_stream.error}); pods are read one by one"
        )
        if notice != self.notice:
            (log.warning if notice else log.info)("%s", notice or "the pod watch works again")
            with self.lock:
                self.notice = notice
                self.dirty.update(self.tracked)
        if not notice:
            self._polled_absent.clear()
            return
        with self.lock:
            pods = sorted(
                (a.attempt_id, a)
                for a in self.tracked.values()
                if a.kind in ("pod", "distributed") and a.attempt_id not in self.busy
            )
        batch = (pods[self._poll_from :] + pods[: self._poll_from])[:POLL_BATCH]
        self._poll_from = (self._poll_from + len(batch)) % max(len(pods), 1)
        for attempt_id, attempt in batch:
            self._poll(attempt_id, attempt)

    def _poll(self, attempt_id: int, attempt: TrackedAttempt) -> None:
        absent = 0
        for name in attempt.pod_names:
            try:
                raw = self.launcher.get_pod(name)
            except LaunchError as exc:
                log.warning("attempt %s: cannot read pod %s: %s", attempt_id, name, exc)
                return
            if raw is not None:
                self._apply(parse_pod(raw))
                continue
            absent += 1
            cached = self.pods.get(name)
            if cached is not None and not cached.gone:
                self._apply(dataclasses.replace(cached, gone=True))
        if absent == len(attempt.pod_names):
            self._polled_absent.add(attempt_id)

    def _delete_orphans(self, seen: Sequence[PodView], running: set[int]) -> None:
        # A pod listed before the running attempts were read, whose attempt is not running, can
        # only belong to an ended attempt: claims commit before their pods are created.
        with self.lock:
            busy = set(self.busy)
        for pod in seen:
            if pod.attempt_id in running or pod.attempt_id in busy:
                continue
            if pod.gone:  # kept for an attempt not loaded yet (see _apply); that attempt ended meanwhile
                self.pods.forget(pod.name)
                continue
            if pod.deleting or self.cleaner.pending("Pod", pod.name):
                continue
            if pod.is_terminal and not self.cfg.delete_finished:
                continue
            delete_quietly(self.launcher, "Pod", pod.name)

    def _sweep_ended(self, running: set[int]) -> None:
        # An attempt claimed, launched and stopped between two ticks (or while this watcher was
        # down) was never tracked: release its objects (a resource has no orphan pod to notice).
        if self._window is None:
            self._window = max(0, self.book.newest_id() - SWEEP_WINDOW)
        ended = self.book.ended_after(self._window)
        with self.lock:
            fresh = [i for i in ended if i not in self.settled and i not in self.busy and i not in self.tracked]
            self.busy.update(fresh)
        loaded = self.book.load(fresh) if fresh else {}
        with self.lock:
            self.busy.difference_update(set(fresh) - set(loaded))
        for attempt in loaded.values():
            self.pool.submit(self._release, attempt)
        self._window = max(self._window, max(running | ended, default=0) - SWEEP_WINDOW)

    def _check(self, attempt: TrackedAttempt, now: datetime, *, loaded: bool) -> None:
        # Pod changes decide tracked attempts as they arrive; a just-loaded attempt may have missed them.
        with self.lock:
            if attempt.attempt_id in self.busy:
                return
        age = (now - attempt.started_at).total_seconds()
        if attempt.deadline_at is not None and now >= attempt.deadline_at:
            self._finish(attempt, Outcome(False, None, f"task {attempt.task!r} timed out after {attempt.timeout} s"))
        elif not attempt.launch:
            if age > self.missing_grace:
                self._finish(
                    attempt,
                    Outcome(False, None, "the attempt was claimed but never launched (the launching worker was lost)"),
                )
        elif attempt.kind == "resource":
            self._check_resource(attempt, now)
        elif (
            age > self.missing_grace
            and not self.pods_of(attempt.attempt_id)
            and ((self.synced.is_set() and not self.notice) or attempt.attempt_id in self._polled_absent)
        ):
            if self._still_creating(attempt.attempt_id, now):
                return
            names = ", ".join(attempt.pod_names) or "?"
            self._finish(attempt, Outcome(False, None, f"pod {names} not found {int(age)} s after launch"))
        else:  # pod changes decide as they arrive; the time rules (startup, image pull, lost node) need a tick
            self._decide(attempt, now)

    def _not_created_yet(self, attempt: TrackedAttempt, now: datetime) -> bool:
        """True while a resource never seen may still be on its way (within missing_grace, or a create retrying)."""
        age = (now - attempt.started_at).total_seconds()
        return age <= self.missing_grace or self._still_creating(attempt.attempt_id, now)

    def _still_creating(self, attempt_id: int, now: datetime) -> bool:
        # The launching worker may still be waiting out a throttled or over-quota create
        # (myapp/k8s/retry.py): read its fresh record before calling the pod lost.
        fresh = self.book.load([attempt_id]).get(attempt_id)
        until = str((fresh.container if fresh else {}).get("creating_until") or "")
        try:
            return bool(until) and (datetime.fromisoformat(until) - now).total_seconds() > -self.missing_grace
        except ValueError:
            return False

    def _decide(self, attempt: TrackedAttempt, now: datetime | None = None) -> None:
        if attempt.kind not in ("pod", "distributed"):
            return
        pods = self.pods_of(attempt.attempt_id)
        notes = {p.name: self.events.latest(p.name, "FailedScheduling") for p in pods}
        outcome = attempt_outcome(
            pods,
            len(attempt.pod_names),
            task=attempt.task,
            timeout=attempt.timeout,
            now=now or self.now(),
            rules=self.cfg.pod_rules,
            notes=notes,
        )
        if outcome is not None:
            self._finish(attempt, outcome)

    def _check_resource(self, attempt: TrackedAttempt, now: datetime) -> None:
        ref = attempt.launch.get("resource") or {}
        limit = int(attempt.launch.get("resource_timeout") or 0)
        if limit and (now - attempt.started_at).total_seconds() >= limit:
            self._finish(
                attempt,
                Outcome(
                    False,
                    None,
                    f"{ref.get('kind')} {ref.get('name')} did not reach its success condition within {limit} s",
                ),
            )
            return
        try:
            obj = self.launcher.get_object(
                str(ref.get("apiVersion")),
                str(ref.get("kind")),
                str(ref.get("name")),
                str(ref.get("namespace") or "") or None,
            )
        except LaunchError as exc:
            log.warning("attempt %s: %s", attempt.attempt_id, exc)
            return
        with self.lock:
            seen = self.resources.get(attempt.attempt_id) is not None
            self.resources[attempt.attempt_id] = obj
            self.dirty.add(attempt.attempt_id)
        if obj is None and not seen and self._not_created_yet(attempt, now):
            return  # the launch record is written before the create: absent is not yet "deleted"
        outcome = self.finisher.judge_resource(attempt, obj)
        if outcome is not None:
            self._finish(attempt, outcome)

    # --- ending attempts -------------------------------------------------------------
    def _finish(self, attempt: TrackedAttempt, outcome: Outcome) -> None:
        with self.lock:
            if attempt.attempt_id in self.busy:
                return
            self.busy.add(attempt.attempt_id)
        self.pool.submit(self._finish_job, attempt, outcome)

    def _finish_job(self, attempt: TrackedAttempt, outcome: Outcome) -> None:
        try:
            if not outcome.succeeded:  # stop the rest at once: one failed pod fails the attempt
                delete_attempt_objects(
                    self.launcher,
                    attempt,
                    self.pods_of(attempt.attempt_id),
                    running_only=True,
                    grace=0 if outcome.force_delete else None,
                )
            self._save_status([attempt.attempt_id])
            self.finisher.finish(attempt, outcome, self.pods_of(attempt.attempt_id))
        except Exception:  # noqa: BLE001  decided again from the cached pods by the next tick
            log.exception("finishing attempt %s failed; the next tick tries again", attempt.attempt_id)
            self._finish_later(attempt)
            return
        # Pods still running are deleted either way: sidecars (a mesh proxy) must not keep them alive.
        # On the cleaner's threads: the next finish must not wait behind these deletes. Queued before
        # _done, so a tick never sees its pods as orphans not being deleted yet.
        try:
            pods = self.pods_of(attempt.attempt_id)
            self.cleaner.submit(  # blocks only while the cleaner's queue is full (its backpressure)
                attempt.attempt_id, attempt_deletions(attempt, pods, running_only=not self.cfg.delete_finished)
            )
        except Exception:  # noqa: BLE001  the attempt is recorded; the orphan sweep deletes what is left
            log.exception("cannot queue the deletes of finished attempt %s", attempt.attempt_id)
        finally:
            self._done(attempt)
            self.finished += 1

    def _finish_later(self, attempt: TrackedAttempt) -> None:
        # Not _done: it would forget the attempt's pods, and pods that ended send no more events,
        # so the next try could only fail the attempt as "pod not found" after missing_grace.
        # Untracked, it is loaded again by the next tick, whose _check decides it from the cache.
        with self.lock:
            self.tracked.pop(attempt.attempt_id, None)
            self.busy.discard(attempt.attempt_id)

    def _release(self, attempt: TrackedAttempt) -> None:
        """The engine ended the attempt (stop, run timeout, lost): kill its pods, archive its log."""
        try:
            if not attempt.launch:  # loaded before its launch record was written: read it again
                attempt = self.book.load([attempt.attempt_id]).get(attempt.attempt_id, attempt)
            delete_attempt_objects(
                self.launcher, attempt, self.pods_of(attempt.attempt_id), running_only=False, grace=self.kill_grace
            )
            self.finisher.release(attempt, self.pods_of(attempt.attempt_id))
        except Exception:  # noqa: BLE001
            log.exception("releasing attempt %s failed", attempt.attempt_id)
        finally:
            self._done(attempt)

    def _done(self, attempt: TrackedAttempt) -> None:
        with self.lock:
            self.settled[attempt.attempt_id] = None
            if len(self.settled) > SETTLED_MEMORY:
                del self.settled[next(iter(self.settled))]
            self.tracked.pop(attempt.attempt_id, None)
            self.resources.pop(attempt.attempt_id, None)
            self.dirty.discard(attempt.attempt_id)
            self.pods.forget_attempt(attempt.attempt_id, keep_finished=not self.cfg.delete_finished)
            self.busy.discard(attempt.attempt_id)
        self.events.forget(attempt.object_names())

    # --- status for the run page -----------------------------------------------------
    def _save_status(self, only: Sequence[int] | None = None) -> None:
        # An attempt being finished (busy) writes its final status itself, before its pods are
        # deleted; a tick must neither overwrite it with "Deleted" nor land a stale "Running" after it.
        with self.status_lock:
            with self.lock:
                ids = list(only) if only is not None else list(self.dirty)
                if only is None:
                    self.dirty.clear()
                # Never before its launch record is loaded: the write would replace that record.
                attempts = [
                    self.tracked[i]
                    for i in ids
                    if i in self.tracked and self.tracked[i].launch and (only is not None or i not in self.busy)
                ]
            updates = {
                a.attempt_id: attempt_status(
                    a,
                    self.pods_of(a.attempt_id),
                    self.events,
                    self.resources.get(a.attempt_id, MISSING),
                    notice=self.notice,
                )
                for a in attempts
            }
            if updates:
                self.book.save_status(updates)
