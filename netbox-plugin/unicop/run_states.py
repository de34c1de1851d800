"""The run state machine (DESIGN.md §2), loaded once at import from the data in `run_states.json`:

    {"$comment": "...", "states": [...], "initial": [...], "terminal": [...],
     "transitions": {"<from>": ["<to>", ...]}}

The document is generated from the one declaration the workers use, core/runs/state-machine.ts, by
`npm run gen:run-states` (the static suite fails when it is stale); change the declaration, never the
JSON. Why each transition exists is said there, next to the audit action each one emits.

`initial` are the states a run may be created in, `transitions` the state changes a write may make;
a terminal state has no way out. A write that keeps the run's state is not a transition and is always
allowed (the reconciler records the AWX job id, a summary or a journal entry that way). The run API
refuses anything else with 409 `{"detail", "state", "allowed"}` (api/views.py).

The checks below refuse a document that is not a consistent state machine, and the plugin does not
start with one.
"""

import json
from importlib.resources import files

from django.core.exceptions import ImproperlyConfigured

DOCUMENT = 'run_states.json'


class RunStateConflict(Exception):
    """409: a run created in, or moved to, a state the state machine does not allow from where it is."""

    status_code = 409

    def __init__(self, detail, state, allowed):
        super().__init__(detail)
        self.detail = detail
        self.state = state
        self.allowed = list(allowed)

    def body(self):
        return {'detail': self.detail, 'state': self.state, 'allowed': self.allowed}


def _validated(doc):
    def fail(why):
        raise ImproperlyConfigured(f'unicop/{DOCUMENT}: {why}')

    keys = {'states', 'initial', 'terminal', 'transitions'}
    if not isinstance(doc, dict) or set(doc) - {'$comment'} != keys:
        fail('an object with only the keys states, initial, terminal, transitions (and $comment) is required')
    states = doc['states']
    if not isinstance(states, list) or not states or not all(isinstance(s, str) for s in states):
        fail('states: a non-empty list of names is required')
    if len(set(states)) != len(states):
        fail('states: a state is listed twice')
    known = set(states)
    for name in ('initial', 'terminal'):
        value = doc[name]
        if not isinstance(value, list) or not set(value) <= known or len(set(value)) != len(value):
            fail(f'{name}: a list of distinct states from `states` is required')
    transitions = doc['transitions']
    if not isinstance(transitions, dict) or set(transitions) != known:
        fail('transitions: one entry per state is required')
    for source, targets in transitions.items():
        if not isinstance(targets, list) or not set(targets) <= known or len(set(targets)) != len(targets):
            fail(f'transitions.{source}: a list of distinct states from `states` is required')
        if source in targets:
            fail(f'transitions.{source}: keeping a state is not a transition')
        if source in doc['terminal'] and targets:
            fail(f'transitions.{source}: a terminal state has no way out')
        if source not in doc['terminal'] and not targets:
            fail(f'transitions.{source}: a state that is not terminal needs a way out')
    return doc


def load(text=None):
    """The state machine from `text` (JSON), or from the package's document."""
    if text is None:
        text = files(__package__).joinpath(DOCUMENT).read_text(encoding='utf-8')
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ImproperlyConfigured(f'unicop/{DOCUMENT}: not JSON ({exc})') from exc
    return _validated(doc)


_machine = load()
STATES = tuple(_machine['states'])
INITIAL = tuple(_machine['initial'])
TERMINAL = frozenset(_machine['terminal'])
TRANSITIONS = {source: tuple(targets) for source, targets in _machine['transitions'].items()}


def check_create(state):
    """A run may be created only in an initial state. The refusal's detail names states only: the
    workers read a 409 whose detail mentions a token as a fence refusal (a lost lease)."""
    if state not in INITIAL:
        raise RunStateConflict(
            f'a run cannot be created in state {state}; a run starts in one of {", ".join(INITIAL)}',
            None,
            INITIAL,
        )


def check_move(current, new):
    """A write may keep the run's state or make one of the declared transitions from it."""
    if new == current or new in TRANSITIONS[current]:
        return
    allowed = TRANSITIONS[current]
    if not allowed:
        detail = f'the run already ended in state {current}; a terminal state is final'
    else:
        detail = f'the run cannot move from {current} to {new}; allowed: {", ".join(allowed)}'
    raise RunStateConflict(detail, current, allowed)
