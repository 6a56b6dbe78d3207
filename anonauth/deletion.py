"""Set-based cascade deletion: delete a set of rows and everything that cascades from them.

``Model.delete()`` and ``QuerySet.delete()`` collect every related object in memory
before deleting it. For thousands of users with their carts, orders and sessions that
is slow and its memory grows with the data. A :class:`Plan`, built once from the
models' metadata, does the same work in one statement per relation instead:

- a ``CASCADE`` relation, followed through nested subqueries however deep the chain
  (cart -> cart items), becomes one ``DELETE``;
- ``SET_NULL``, ``SET_DEFAULT`` and ``SET()`` become one ``UPDATE``;
- ``PROTECT`` and ``RESTRICT`` relations are *blockers*: :meth:`Plan.blocked` finds the
  ids they keep, so the caller deletes only the others;
- ``DO_NOTHING`` with its database constraint (``db_constraint=True``, the default) is
  a blocker too: the database would refuse the delete (at the statement, or at the
  commit for a deferred constraint, failing the whole transaction); without a
  constraint it is left alone, a dangling id being what the relation asks for.

Like ``QuerySet.delete()``'s fast path, the statements send no ``pre_delete`` or
``post_delete`` signals. Relation graphs they cannot express (a ``CASCADE`` cycle,
multi-table inheritance, generic relations, custom ``on_delete`` handlers, chains
deeper than :data:`MAX_DEPTH`) make the plan fall back to Django's collector: correct,
only slower.

This is the only module of anonauth that uses Django's private deletion APIs
(``QuerySet._raw_delete``, ``get_candidate_relations_to_delete``); other modules call
:func:`raw_delete`. Everything runs on anonauth's database alias (:mod:`anonauth.db`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.db import models
from django.db.models import ProtectedError, QuerySet, RestrictedError
from django.db.models.deletion import get_candidate_relations_to_delete

from anonauth import db

# Deeper CASCADE chains are left to Django's collector.
MAX_DEPTH = 8

_SET_HANDLERS = (models.SET_NULL, models.SET_DEFAULT)
_BLOCKING_HANDLERS = (models.PROTECT, models.RESTRICT)


def raw_delete(queryset: QuerySet[Any], using: str) -> int:
    """Delete ``queryset``'s rows in one ``DELETE`` and return how many went.

    Nothing is collected: no cascades, no signals. The database's own constraints still
    apply, so delete what points at the rows first.
    """
    return queryset._raw_delete(using) or 0  # None when the query cannot match a row


class Deletion(NamedTuple):
    """What :meth:`Plan.delete` did: rows deleted per model label, and the ids a
    protecting relation turned out to keep (only the collector finds any)."""

    rows: dict[str, int]
    blocked: dict[Any, str]


@dataclass(frozen=True)
class CascadeStep:
    """A foreign key reached from the plan's model through ``CASCADE`` relations."""

    fk: models.ForeignKey[Any, Any]
    parent: CascadeStep | None
    on_delete: Callable[..., Any]

    @property
    def model(self) -> type[models.Model]:
        return self.fk.model

    @property
    def label(self) -> str:
        """``app_label.Model.field``, e.g. ``shop.CartItem.cart``."""
        return f"{self.model._meta.label}.{self.fk.name}"

    @property
    def path(self) -> str:
        """The lookup from this step's model to the plan's model, e.g. ``cart__owner``."""
        return self.fk.name if self.parent is None else f"{self.fk.name}__{self.parent.path}"

    def rows(self, ids: Any) -> QuerySet[Any]:
        """This step's rows that belong to ``ids`` (a list or a subquery of the plan's
        model's primary keys), as one nested subquery."""
        return _manager(self.model).filter(**{f"{self.fk.attname}__in": self._targets(ids)})

    def _targets(self, ids: Any) -> Any:
        """The values of the field this step's foreign key points at, for ``ids``."""
        target = self.fk.target_field
        if self.parent is not None:
            return self.parent.rows(ids).values(target.attname)
        if target.primary_key:
            return ids
        return _manager(self.fk.related_model).filter(pk__in=ids).values(target.attname)

    def referenced(self, ids: Any) -> QuerySet[Any]:
        """The ids among ``ids`` that this step's rows point at (distinct)."""
        lookup = f"{self.path}__pk"
        rows = _manager(self.model).filter(**{f"{lookup}__in": ids})
        return rows.order_by().values_list(lookup, flat=True).distinct()

    def apply(self, ids: Any, counts: dict[str, int]) -> None:
        """Delete (``CASCADE``) or update (``SET_*``) this step's rows for ``ids``."""
        rows = self.rows(ids)
        if self.on_delete is models.CASCADE:
            _add(counts, self.model._meta.label, raw_delete(rows, db.alias()))
        else:
            rows.update(**{self.fk.name: self.update_value()})

    def update_value(self) -> Any:
        """The value ``SET_NULL``, ``SET_DEFAULT`` or ``SET(value)`` writes."""
        if self.on_delete is models.SET_NULL:
            return None
        if self.on_delete is models.SET_DEFAULT:
            return self.fk.get_default()
        value = self.on_delete.deconstruct()[1][0]  # type: ignore[attr-defined]
        return value() if callable(value) else value


@dataclass(frozen=True)
class Plan:
    """Ordered statements deleting rows of ``model`` and everything that cascades."""

    model: type[models.Model]
    steps: tuple[CascadeStep, ...] = ()  # children before parents
    blockers: tuple[CascadeStep, ...] = ()
    fallback: str | None = None

    @classmethod
    def build(cls, model: type[models.Model]) -> Plan:
        """Plan the deletion of ``model``'s rows from its relations' metadata."""
        found = _Found()
        found.expressible(model)
        # The walk goes on past what needs the collector, so the blockers are complete
        # either way: the collector itself finds PROTECT and RESTRICT, never DO_NOTHING.
        _walk(model, None, (model,), found)
        if found.fallback is not None:
            return cls(model, blockers=tuple(found.blockers), fallback=found.fallback)
        return cls(model, tuple(found.steps), tuple(found.blockers))

    def blocked(self, ids: Sequence[Any]) -> dict[Any, str]:
        """The ids among ``ids`` that a ``PROTECT``, ``RESTRICT`` or constrained
        ``DO_NOTHING`` relation keeps, each with the label of the first such relation."""
        blocked: dict[Any, str] = {}
        if not self.blockers:
            return blocked
        id_set = self._id_set(ids)
        for step in self.blockers:
            for pk in step.referenced(id_set):
                blocked.setdefault(pk, step.label)
        return blocked

    def delete(self, ids: Sequence[Any]) -> Deletion:
        """Delete the rows ``ids`` and what cascades from them (call inside a
        transaction; leave out what :meth:`blocked` reports first)."""
        if self.fallback is not None:
            return _collector_delete(self.model, ids)
        counts: dict[str, int] = {}
        id_set = self._id_set(ids)
        for step in self.steps:
            step.apply(id_set, counts)
        rows = _manager(self.model).filter(pk__in=id_set)
        _add(counts, self.model._meta.label, raw_delete(rows, db.alias()))
        return Deletion(counts, {})

    def _id_set(self, ids: Sequence[Any]) -> Any:
        return db.id_set(ids, self.model._meta.pk)


# Building the plan


@dataclass
class _Found:
    steps: list[CascadeStep] = field(default_factory=list)
    blockers: list[CascadeStep] = field(default_factory=list)
    fallback: str | None = None  # the first reason the collector is needed

    def needs_collector(self, reason: str) -> None:
        if self.fallback is None:
            self.fallback = reason

    def expressible(self, model: type[models.Model]) -> None:
        reason = _inexpressible(model)
        if reason is not None:
            self.needs_collector(reason)


def _inexpressible(model: type[models.Model]) -> str | None:
    """Why deleting ``model``'s rows needs the collector, if it does."""
    if model._meta.parents:
        return f"{model._meta.label} inherits from a concrete model"
    if any(hasattr(f, "bulk_related_objects") for f in model._meta.private_fields):
        return f"{model._meta.label} has a generic relation"
    return None


def _walk(
    model: type[models.Model],
    parent: CascadeStep | None,
    chain: tuple[type[models.Model], ...],
    found: _Found,
) -> None:
    """Add the steps for what points at ``model``, depth first, children first."""
    for related in get_candidate_relations_to_delete(model._meta):
        fk: models.ForeignKey[Any, Any] = related.field  # type: ignore[attr-defined]
        on_delete = fk.remote_field.on_delete or models.DO_NOTHING
        _add_step(CascadeStep(fk, parent, on_delete), chain, found)


def _add_step(step: CascadeStep, chain: tuple[type[models.Model], ...], found: _Found) -> None:
    if step.on_delete is models.CASCADE:
        _cascade(step, chain, found)
    elif step.on_delete in _BLOCKING_HANDLERS or _constrained_do_nothing(step):
        found.blockers.append(step)
    elif step.on_delete in _SET_HANDLERS or hasattr(step.on_delete, "deconstruct"):
        found.steps.append(step)
    elif step.on_delete is not models.DO_NOTHING:
        found.needs_collector(f"{step.label} has a custom on_delete")


def _constrained_do_nothing(step: CascadeStep) -> bool:
    """A ``DO_NOTHING`` relation the database enforces: deleting what it points at
    breaks the constraint."""
    return step.on_delete is models.DO_NOTHING and bool(getattr(step.fk, "db_constraint", True))


def _cascade(step: CascadeStep, chain: tuple[type[models.Model], ...], found: _Found) -> None:
    model = step.model
    if model in chain:
        found.needs_collector(f"{step.label} cascades in a cycle")
        return
    if len(chain) > MAX_DEPTH:
        found.needs_collector(f"{step.label} cascades more than {MAX_DEPTH} levels deep")
        return
    found.expressible(model)
    _walk(model, step, (*chain, model), found)
    found.steps.append(step)


# Django's collector, for what the plan cannot express


def _collector_delete(model: type[models.Model], ids: Sequence[Any]) -> Deletion:
    """Delete through Django's collector; one row at a time if something protects."""
    try:
        return Deletion(dict(_manager(model).filter(pk__in=ids).delete()[1]), {})
    except (ProtectedError, RestrictedError):
        pass  # raised while collecting: nothing was deleted yet
    counts: dict[str, int] = {}
    blocked: dict[Any, str] = {}
    for pk in ids:
        try:
            with db.atomic():
                for label, rows in _manager(model).filter(pk=pk).delete()[1].items():
                    _add(counts, label, rows)
        except (ProtectedError, RestrictedError) as error:
            blocked[pk] = _protecting_label(error)
    return Deletion(counts, blocked)


def _protecting_label(error: ProtectedError | RestrictedError) -> str:
    objects = (
        error.protected_objects if isinstance(error, ProtectedError) else error.restricted_objects
    )
    first = next(iter(objects), None)
    return "?" if first is None else first._meta.label


def _manager(model: type[models.Model]) -> QuerySet[Any]:
    return model._base_manager.using(db.alias())


def _add(counts: dict[str, int], label: str, rows: int) -> None:
    if rows:
        counts[label] = counts.get(label, 0) + rows
