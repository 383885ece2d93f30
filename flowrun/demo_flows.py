"""The flows the demo plays: their steps, how long each takes and how each one fails.

A small catalogue shaped like a real engine's: nightly loads, webhook-driven
syncs, a model retrain waiting on a human approval, order fulfilment polling a
carrier, a weekly report and a change-driven CRM sync that is often skipped.
Durations are log-normal around a median; failure probabilities are per attempt
and each failing attempt picks one of the step's realistic error messages.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

# Flow ids are stable across demo runs (uuid5 of the name), so a second demo on the
# same home adds runs to the same flows instead of inventing new ones.
_NAMESPACE = uuid.UUID("6f1c2d4e-8a7b-4c3d-9e0f-1a2b3c4d5e6f")


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One step of a flow, with its duration and failure model."""

    key: str
    type: str
    median_s: float
    sigma: float = 0.5
    fail_p: float = 0.0
    errors: tuple[str, ...] = ()
    # Polling steps report Pending `polls` times on average, `poll_s` seconds apart.
    polls: float = 0.0
    poll_s: float = 0.0
    skip_p: float = 0.0


@dataclass(frozen=True, slots=True)
class FlowSpec:
    """A flow definition: name, triggers, relative frequency, steps and time limit."""

    name: str
    triggers: tuple[str, ...]
    weight: float
    steps: tuple[StepSpec, ...]
    timeout_s: float
    # Probability that the run finds nothing to do after its first step (run Skipped).
    noop_p: float = 0.0

    @property
    def id(self) -> uuid.UUID:
        """The flow's stable id."""
        return uuid.uuid5(_NAMESPACE, self.name)

    @property
    def typical_s(self) -> float:
        """Rough length of a run in seconds: step medians plus the average time spent polling."""
        return sum(step.median_s + step.polls * step.poll_s for step in self.steps)


FLOWS: tuple[FlowSpec, ...] = (
    FlowSpec(
        "order-fulfilment",
        ("webhook",),
        weight=0.34,
        timeout_s=6 * 3600,
        steps=(
            StepSpec("reserve-stock", "http", 0.8, fail_p=0.018, errors=("HTTP 409 Conflict: SKU out of stock",)),
            StepSpec(
                "charge-card",
                "http",
                1.6,
                fail_p=0.072,
                errors=("card_declined", "payment gateway timeout after 30s", "HTTP 502 Bad Gateway from payments"),
            ),
            StepSpec("await-shipment", "poll", 2.0, polls=2.0, poll_s=600),
            StepSpec("send-confirmation", "email", 0.4, fail_p=0.009, errors=("SMTP 451 temporary local problem",)),
        ),
    ),
    FlowSpec(
        "invoice-sync",
        ("webhook", "schedule"),
        weight=0.22,
        timeout_s=3600,
        steps=(
            StepSpec(
                "fetch-invoices",
                "http",
                3.0,
                sigma=0.8,
                fail_p=0.09,
                errors=("HTTP 503 Service Unavailable from billing API", "ReadTimeout: billing.example.com"),
            ),
            StepSpec("match-payments", "python", 2.2),
            StepSpec(
                "post-ledger",
                "sql",
                1.1,
                fail_p=0.036,
                errors=('duplicate key value violates unique constraint "ledger_entries_pkey"',),
            ),
            StepSpec("notify-finance", "email", 0.5, skip_p=0.6),
        ),
    ),
    FlowSpec(
        "crm-contacts-sync",
        ("schedule",),
        weight=0.18,
        timeout_s=1800,
        noop_p=0.45,
        steps=(
            StepSpec("check-changes", "http", 0.9),
            StepSpec("pull-contacts", "http", 8.0, fail_p=0.108, errors=("HTTP 429 Too Many Requests",)),
            StepSpec("upsert-contacts", "sql", 5.0, fail_p=0.018, errors=("deadlock detected",)),
        ),
    ),
    FlowSpec(
        "nightly-warehouse-load",
        ("schedule", "manual"),
        weight=0.12,
        timeout_s=4 * 3600,
        steps=(
            StepSpec("extract-orders", "http", 25.0, fail_p=0.036, errors=("ReadTimeout: orders-api",)),
            StepSpec("extract-customers", "http", 18.0, fail_p=0.036, errors=("ReadTimeout: crm-api",)),
            StepSpec("transform", "python", 95.0, sigma=0.4, fail_p=0.018, errors=("KeyError: 'currency'",)),
            StepSpec(
                "load-warehouse",
                "sql",
                70.0,
                sigma=0.6,
                fail_p=0.072,
                errors=("could not serialize access due to concurrent update", "disk quota exceeded"),
            ),
            StepSpec("refresh-dashboards", "http", 6.0, skip_p=0.3),
        ),
    ),
    FlowSpec(
        "weekly-report",
        ("schedule", "manual"),
        weight=0.09,
        timeout_s=1800,
        steps=(
            StepSpec(
                "query-metrics", "sql", 30.0, fail_p=0.018, errors=("canceling statement due to statement timeout",)
            ),
            StepSpec("render-pdf", "python", 12.0, fail_p=0.054, errors=("MemoryError", "OSError: font not found")),
            StepSpec("email-report", "email", 0.6),
        ),
    ),
    FlowSpec(
        "model-retrain",
        ("schedule", "manual"),
        weight=0.05,
        timeout_s=8 * 3600,
        steps=(
            StepSpec("snapshot-features", "sql", 120.0, sigma=0.3),
            StepSpec(
                "train",
                "gpu",
                1500.0,
                sigma=0.35,
                fail_p=0.144,
                errors=("CUDA out of memory", "NaN loss at epoch 3", "spot instance reclaimed"),
            ),
            StepSpec("evaluate", "python", 60.0, sigma=0.3),
            StepSpec("await-approval", "approval", 1.0, polls=3.0, poll_s=900),
            StepSpec("deploy", "k8s", 35.0, fail_p=0.036, errors=("ImagePullBackOff",)),
        ),
    ),
)
