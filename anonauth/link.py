"""Linking: merge a guest into an existing account in one transaction.

Every relation that points at the user model (ForeignKey, OneToOneField, and the
through tables of ManyToManyFields) is named ``"app_label.ModelName.field_name"``. When a
guest is linked, ``guest_linking`` receivers run first (to merge domain data their own
way), then every remaining relation is moved to the account with one UPDATE each, rows
that would break a unique constraint (fields, conditions or expressions) being resolved
per ``ANONAUTH_LINK_CONFLICTS``. Rows that reference moved rows by the moved key (the
photos of a profile whose primary key is its user) follow them, and the deferred foreign
keys are checked before the link's transaction ends.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import reduce
from operator import or_
from typing import Any

from django.apps import apps
from django.contrib.auth import authenticate, get_user_model, login
from django.db import models
from django.db.models import Exists, F, OuterRef, Q, Value
from django.db.models.constants import LOOKUP_SEP
from django.db.models.lookups import IsNull
from django.http import HttpRequest
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from anonauth import db, rates, signals, state
from anonauth.conf import conf
from anonauth.deletion import Plan
from anonauth.exceptions import (
    AnonAuthError,
    DeletionBlocked,
    InvalidCredentials,
    LinkConflict,
    LinkFailed,
    NotGuest,
    RateLimited,
)
from anonauth.guests import check_rate, is_guest

logger = logging.getLogger("anonauth.link")

KEEP_TARGET = "keep_target"
KEEP_GUEST = "keep_guest"
ERROR = "error"
CONFLICT_POLICIES = (KEEP_TARGET, KEEP_GUEST, ERROR)

# Permissions are the account's own: a PermissionsMixin's m2m fields are never moved.
PERMISSION_FIELDS = frozenset({"groups", "user_permissions"})
# The guest flag itself: moved, it would make the account a guest (deleted at its next
# sign-out, purged once stale). Never moved, whatever ANONAUTH_LINK_EXCLUDE and
# ANONAUTH_LINK_REASSIGN say.
GUEST_FLAG = "anonauth.Guest.user"
LINK_RATE_LIMIT_GROUP = "anonauth.link"
# ``LinkResult.method``: how the link came about.
DIRECT = "direct"  # a call to link_guest()
LOGIN = "login"  # a login() into the account (admin, LoginView, allauth, ...)
CREDENTIALS = "credentials"  # the link endpoint (link_with_credentials)


@dataclass(frozen=True)
class Relation:
    """One way rows point at the user model: ``field_name`` on ``model``."""

    label: str
    model: type[models.Model]
    field_name: str

    def rows(self, user: Any) -> models.QuerySet[Any]:
        return self.model._base_manager.using(db.alias()).filter(**{self.field_name: user})

    def unique_sets(self) -> list[UniqueSet]:
        """The rest of each unique constraint that includes this field."""
        return unique_sets(self.model, self.field_name)

    def key(self, user: Any) -> Any:
        """The value ``user``'s rows hold in this relation's column."""
        target: Any = self.model._meta.get_field(self.field_name)
        return getattr(user, target.target_field.attname)

    def dependents(self) -> list[Relation]:
        """The foreign keys that reference this relation's column (the photos of a profile
        whose primary key is its user): their rows hold the same key, and follow it."""
        return referencing(self.model, self.field_name)


@dataclass(frozen=True)
class UniqueSet:
    """A uniqueness rule that includes a relation's field, seen from that field: the
    other fields and expressions in which two rows of one user must differ, and the
    rule's condition."""

    fields: Sequence[str] = ()
    expressions: Sequence[Any] = ()
    condition: Q | None = None
    nulls_distinct: bool = True  # False: a NULL equals a NULL (``nulls_distinct=False``)


@dataclass
class LinkResult:
    """What a link did: rows moved to the account and guest rows dropped, per relation;
    ``method`` is how it came about (``"direct"``, ``"login"``, ``"credentials"``)."""

    guest_id: Any
    user_id: Any
    moved: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    guest_deleted: bool = False
    method: str = DIRECT


def link_guest(
    guest: Any, user: Any, *, request: HttpRequest | None = None, method: str = DIRECT
) -> LinkResult:
    """Merge ``guest`` into the registered ``user`` in one transaction.

    Sends ``guest_linking`` (inside the transaction), reassigns every relation per
    ``ANONAUTH_LINK_REASSIGN`` / ``ANONAUTH_LINK_EXCLUDE`` / ``ANONAUTH_LINK_CONFLICTS``,
    deletes the guest (unless ``ANONAUTH_LINK_DELETE_GUEST`` is false) and, after commit,
    sends ``guest_linked``; both signals carry the guest's ``metadata``. Raises
    :class:`NotGuest` if ``guest`` is not (or no longer) a guest or ``user`` is one,
    :class:`InvalidCredentials` if ``user`` cannot log in (``is_active = False``: the
    guest would lose its data and its session to an account nobody can use),
    :class:`LinkConflict` under the ``error`` policy,
    :class:`DeletionBlocked` if rows the link does not move protect the guest; any
    error rolls everything back.
    """
    if guest.pk == user.pk or db.guests().filter(user_id=user.pk).exists():
        raise NotGuest(_("A guest can only be linked into a registered account."))
    if not can_log_in(user):
        raise InvalidCredentials(_("A guest is never linked into an inactive account."))
    result = LinkResult(guest_id=guest.pk, user_id=user.pk, method=method)
    nested = db.connection().in_atomic_block  # ATOMIC_REQUESTS: the request commits
    with db.atomic():
        # The one lock order (the user row, then the Guest row): a concurrent link,
        # upgrade, delete or purge of this guest waits here, or is waited for.
        metadata = db.lock_guest_metadata(guest.pk)
        if metadata is None:
            raise NotGuest(_("This user is no longer a guest."))
        sender = user._meta.model
        signals.guest_linking.send(
            sender, guest=guest, user=user, request=request, metadata=metadata
        )
        relations = relations_to_reassign()
        for relation in relations:
            move(relation, guest, user, result)
        if conf.LINK_DELETE_GUEST:
            _check_deletable(guest)
            guest.delete(using=db.alias())
            result.guest_deleted = True
        if nested:
            _check_foreign_keys(relations, result)
        signals.send_after_commit(
            signals.guest_linked,
            sender,
            guest_id=result.guest_id,
            user=user,
            request=request,
            result=result,
            metadata=metadata,
        )
    return result


def _check_deletable(guest: Any) -> None:
    """Raise :class:`DeletionBlocked` if rows the link did not move (an excluded
    relation) protect the guest: ``PROTECT``/``RESTRICT`` would raise in the delete,
    ``DO_NOTHING`` only at the commit, after the rest was done."""
    protected = Plan.build(guest._meta.concrete_model).blocked([guest.pk])
    if protected:
        raise DeletionBlocked(f"{protected[guest.pk]} keeps the guest; it was not linked.")


def _check_foreign_keys(relations: Iterable[Relation], result: LinkResult) -> None:
    """Check the deferred foreign keys now, when the link is a savepoint of an outer
    transaction (``ATOMIC_REQUESTS``, a caller's ``atomic()``): a reference left dangling
    (by a ``guest_linking`` receiver, say) fails the link, rolled back with it, not the
    outer commit after the link reported success. (Outermost, the link's own commit
    checks them.) PostgreSQL checks every pending constraint (``SET CONSTRAINTS ALL
    IMMEDIATE``); SQLite the tables the link wrote rows to."""
    written = {*result.moved, *result.dropped}
    tables = {r.model._meta.db_table for r in with_dependents(relations) if r.label in written}
    db.connection().check_constraints(table_names=sorted(tables))


def with_dependents(relations: Iterable[Relation]) -> Iterator[Relation]:
    """``relations``, each followed by its :meth:`~Relation.dependents` (recursively)."""
    for relation in relations:
        yield relation
        yield from with_dependents(relation.dependents())


def link_at_sign_in(guest: Any, user: Any, request: HttpRequest) -> LinkResult | None:
    """Link ``guest`` into ``user`` as part of a sign-in; never raises.

    A failure is logged and leaves the guest and its data as they were (the purge
    removes the guest later); the sign-in goes on either way. The request remembers
    the attempt, so the ``login()`` that follows does not link again and the sign-out
    some flows do first does not delete the guest (``ANONAUTH_DELETE_ON_LOGOUT``).
    """
    state.of(request).link_attempted = True
    if not can_log_in(user):
        # The sign-in itself fails (Django and allauth refuse inactive users): the
        # guest stays as it was, signed in where the login leaves it so.
        logger.info(
            "anonauth: guest %s kept: the account is inactive",
            guest.pk,
            extra={"event": "link_refused", "guest_id": guest.pk, "code": "inactive"},
        )
        return None
    try:
        return link_guest(guest, user, request=request, method=LOGIN)
    except NotGuest:
        return None  # upgraded, linked or purged meanwhile: nothing to merge
    except Exception:
        logger.exception(
            "anonauth: linking guest %s failed; the guest and its data are kept",
            guest.pk,
            extra={"event": "link_failed", "guest_id": guest.pk, "method": LOGIN},
        )
        return None


@sensitive_variables("password")
def link_with_credentials(
    request: HttpRequest, login_name: str, password: str
) -> tuple[Any, LinkResult]:
    """Sign the request's guest into the account ``login_name``/``password`` names, merging
    the guest into it: the link endpoint's whole flow. Returns ``(account, result)``.

    The account is authenticated (rate limited, :class:`InvalidCredentials`), the guest
    is linked (:func:`link_guest`: its errors propagate and leave the guest signed in and
    intact), then the account is logged in on ``request``.
    """
    account = authenticate_account(request, login_name, password)
    try:
        result = link_guest(request.user, account, request=request, method=CREDENTIALS)
    except AnonAuthError:
        raise
    except Exception as error:  # a guest_linking receiver failed: rolled back, guest kept
        guest_id = request.user.pk
        logger.exception(
            "anonauth: linking guest %s failed; it is kept",
            guest_id,
            extra={"event": "link_failed", "guest_id": guest_id, "method": CREDENTIALS},
        )
        raise LinkFailed() from error
    state.of(request).link_attempted = True  # the login() below must not link again
    login(request, account)
    return account, result


def can_log_in(user: Any) -> bool:
    """Whether ``user`` may be signed in at all: not ``is_active = False``."""
    return getattr(user, "is_active", True) is not False


def link_attempted(request: HttpRequest | None) -> bool:
    """Whether this request already linked (or tried to link) a guest."""
    return request is not None and state.of(request).link_attempted


def move(relation: Relation, guest: Any, user: Any, result: LinkResult) -> None:
    """Move ``relation``'s rows from ``guest`` to ``user``, resolving unique conflicts per
    ``ANONAUTH_LINK_CONFLICTS``; the rows that reference them by the moved key follow."""
    policy = conf.LINK_CONFLICTS.get(relation.label, KEEP_TARGET)
    _move(relation, relation.key(guest), relation.key(user), policy, result)


def _move(relation: Relation, source: Any, target: Any, policy: str, result: LinkResult) -> None:
    """Move ``relation``'s rows keyed ``source`` to ``target`` with one UPDATE, dropping
    the rows of the side ``policy`` gives up where a unique constraint would break.

    The rows of its :meth:`~Relation.dependents` follow, under the same policy: the
    guest's join the account's row, whichever of the two rows is kept. They are moved
    before a row they reference is dropped (which would take them with it through their
    ``on_delete``): ``keep_target`` drops the guest's row once they left it;
    ``keep_guest`` sets the account's on the guest's row before dropping the account's;
    ``error`` refuses before anything moves.
    """
    dependents = relation.dependents()
    if dependents and policy == KEEP_GUEST:
        _park_dependents(relation, dependents, source, target, result)
    if policy != KEEP_TARGET:
        _drop_colliding(relation, source, target, policy, result)
    for dependent in dependents:
        _move(dependent, source, target, policy, result)
    if policy == KEEP_TARGET:
        _drop_colliding(relation, source, target, policy, result)
    moved = relation.rows(source).update(**{relation.field_name: target})
    _count(result.moved, relation.label, moved)


def _drop_colliding(
    relation: Relation, source: Any, target: Any, policy: str, result: LinkResult
) -> None:
    _count(result.dropped, relation.label, resolve_conflicts(relation, source, target, policy))


def _park_dependents(
    relation: Relation, dependents: Sequence[Relation], source: Any, target: Any, result: LinkResult
) -> None:
    """Under ``keep_guest`` the account's row is dropped for the guest's: first set the rows
    that reference it on the guest's row (where they collide, the guest's win), so they
    are kept, and come back with the guest's. They were the account's already: not
    counted as moved."""
    sets = relation.unique_sets()
    if not sets or not colliding(relation, target, source, sets).exists():
        return
    parked = LinkResult(guest_id=source, user_id=target)
    for dependent in dependents:
        _move(dependent, target, source, KEEP_TARGET, parked)
    for label, rows in parked.dropped.items():
        _count(result.dropped, label, rows)
    for label, rows in parked.moved.items():
        _count(result.moved, label, -rows)


def _count(counts: dict[str, int], label: str, rows: int) -> None:
    total = counts.get(label, 0) + rows
    if total:
        counts[label] = total
    else:
        counts.pop(label, None)


def resolve_conflicts(relation: Relation, source: Any, target: Any, policy: str) -> int:
    """Delete the rows that would collide once ``source``'s rows are ``target``'s; return
    how many went.

    ``keep_target`` deletes the source's (the guest's) colliding rows, ``keep_guest``
    the target's (the account's), ``error`` raises :class:`LinkConflict`. Rows hanging off
    deleted rows go with them (their own ``on_delete``).
    """
    sets = relation.unique_sets()
    if not sets:
        return 0
    loser, winner = (target, source) if policy == KEEP_GUEST else (source, target)
    rows = colliding(relation, loser, winner, sets)
    if policy == ERROR:
        if rows.exists():
            raise LinkConflict(
                format_lazy(
                    _("The account already has rows that {relation} keeps unique."),
                    relation=relation.label,
                )
            )
        return 0
    _total, per_model = rows.delete()
    return per_model.get(relation.model._meta.label, 0)


def colliding(
    relation: Relation, loser: Any, winner: Any, sets: Sequence[UniqueSet]
) -> models.QuerySet[Any]:
    """``loser``'s rows that share, with one of ``winner``'s rows, the rest of a unique set:
    its other fields, and the values of its expressions once the row is ``winner``'s."""
    rows = relation.rows(loser)
    conditions = []
    for number, rule in enumerate(sets):
        twins = relation.rows(winner)
        for name in rule.fields:
            twins = twins.filter(_same(name, rule.nulls_distinct))
        for index, expression in enumerate(rule.expressions):
            alias = f"_anonauth_unique_{number}_{index}"
            rows = rows.annotate(**{alias: _as_moved(relation, expression, winner)})
            twins = twins.annotate(**{alias: expression}).filter(_same(alias, rule.nulls_distinct))
        condition = rule.condition
        exists = Q(Exists(twins.filter(condition) if condition is not None else twins))
        conditions.append(exists & condition if condition is not None else exists)
    return rows.filter(reduce(or_, conditions))


def _same(name: str, nulls_distinct: bool) -> Q:
    """The twin's ``name`` equals the outer row's; with ``nulls_distinct=False`` two NULLs
    are the same value too (SQL's ``=`` never matches a NULL)."""
    same = Q(**{name: OuterRef(name)})
    if nulls_distinct:
        return same
    return same | (Q(**{f"{name}__isnull": True}) & Q(IsNull(OuterRef(name), True)))


def _as_moved(relation: Relation, expression: Any, winner: Any) -> Any:
    """``expression`` over a loser's row as it will be once moved: the relation's column
    read as ``winner``'s key."""
    field = relation.model._meta.get_field(relation.field_name)
    key = Value(winner, output_field=field)  # type: ignore[arg-type]
    return expression.replace_expressions({F(name): key for name in _names(field)})


def unique_sets(model: type[models.Model], field_name: str) -> list[UniqueSet]:
    """Each uniqueness rule including ``field_name``: its other fields (or expressions)
    and its condition."""
    opts = model._meta
    names = _names(opts.get_field(field_name))
    rules: list[tuple[Sequence[str], Q | None, bool]] = []
    if opts.get_field(field_name).unique:  # type: ignore[union-attr]
        rules.append(((field_name,), None, True))
    rules.extend((tuple(together), None, True) for together in opts.unique_together)
    for constraint in opts.total_unique_constraints + _conditional_constraints(model):
        rules.append((constraint.fields, constraint.condition, _nulls_distinct(constraint)))
    sets = [
        UniqueSet(
            fields=[n for n in fields if n not in names], condition=cond, nulls_distinct=distinct
        )
        for fields, cond, distinct in rules
        if names & set(fields)
    ]
    return sets + _expression_sets(model, names)


def _nulls_distinct(constraint: models.UniqueConstraint) -> bool:
    """``False`` only for ``nulls_distinct=False`` (``None``, the database's default, is
    distinct on every database Django supports)."""
    return constraint.nulls_distinct is not False


def _names(field: Any) -> set[str]:
    """The names a constraint may use for ``field``."""
    return {field.name, field.attname, *(["pk"] if field.primary_key else [])}


def _conditional_constraints(model: type[models.Model]) -> list[models.UniqueConstraint]:
    return [
        c
        for c in model._meta.constraints
        if isinstance(c, models.UniqueConstraint) and c.fields and c.condition is not None
    ]


def _expression_sets(model: type[models.Model], names: set[str]) -> list[UniqueSet]:
    """The expression unique constraints that read the field (one of ``names``): their
    expressions but the bare field, and their condition.

    A constraint with an expression that may read columns Django does not see
    (``RawSQL``, a function without arguments) is left out: it cannot be compared in a
    query, and a row that breaks it makes the link fail (rolled back, the guest kept).
    """
    sets = []
    for constraint in model._meta.constraints:
        if not isinstance(constraint, models.UniqueConstraint) or not constraint.expressions:
            continue
        expressions = [_for_validation(e) for e in constraint.expressions]
        if not all(_comparable(e) for e in expressions):
            continue
        if any(names & _references(e) for e in expressions):
            others = [e for e in expressions if not (isinstance(e, F) and _name(e) in names)]
            sets.append(
                UniqueSet(
                    expressions=others,
                    condition=constraint.condition,
                    nulls_distinct=_nulls_distinct(constraint),
                )
            )
    return sets


def _for_validation(expression: Any) -> Any:
    """``expression`` as a query can compute it (``OpClass``, ``.desc()`` unwrapped)."""
    unwrap = getattr(expression, "get_expression_for_validation", None)
    return unwrap() if unwrap is not None else expression


def _comparable(expression: Any) -> bool:
    """Whether every column ``expression`` reads is one Django sees (an ``F``)."""
    if isinstance(expression, F | Value):
        return True
    parts = _parts(expression)
    return bool(parts) and all(_comparable(part) for part in parts)


def _references(expression: Any) -> set[str]:
    """The fields ``expression`` reads, by name."""
    if isinstance(expression, F):
        return {_name(expression).split(LOOKUP_SEP)[0]}
    return set().union(*(_references(part) for part in _parts(expression)))


def _parts(expression: Any) -> list[Any]:
    """What ``expression`` is made of: its source expressions; for a ``Q`` (a ``When``'s
    condition), its lookups (as ``F``) and expression values."""
    if not isinstance(expression, Q):
        sources: list[Any] = getattr(expression, "get_source_expressions", list)()
        return [source for source in sources if source is not None]
    parts = []
    for child in expression.children:
        lookup, value = child if isinstance(child, tuple) else (None, child)
        parts += [F(lookup)] if lookup is not None else []
        parts += [value] if hasattr(value, "resolve_expression") else []
    return parts


def _name(reference: F) -> str:
    name: str = reference.name  # type: ignore[attr-defined]  # not in django-stubs
    return name


def referencing(model: type[models.Model], field_name: str) -> list[Relation]:
    """The foreign keys that point at ``model.field_name`` (its primary key, or their
    ``to_field``), as relations (``"app_label.ModelName.field_name"``). Multi-table
    children (parent links) are not among them."""
    target = model._meta.get_field(field_name)
    return [
        Relation(
            f"{rel.related_model._meta.label}.{rel.field.name}", rel.related_model, rel.field.name
        )
        for rel in model._meta.get_fields(include_hidden=True)
        if isinstance(rel, models.ForeignObjectRel)
        and isinstance(rel.field, models.ForeignKey)
        and not rel.parent_link
        and rel.field.target_field == target
    ]


def user_relations() -> list[Relation]:
    """Every relation that points at the user model, with its label."""
    user_model = get_user_model()._meta.concrete_model
    relations = []
    for model in apps.get_models(include_auto_created=True):
        for fk in model._meta.local_fields:
            if _points_at(fk, user_model):
                relations.append(Relation(relation_label(model, fk), model, fk.name))
    return relations


def _points_at(fk: Any, user_model: Any) -> bool:
    if not isinstance(fk, models.ForeignKey) or fk.remote_field.parent_link:
        return False
    return bool(fk.related_model._meta.concrete_model is user_model)


def relation_label(model: type[models.Model], fk: models.Field[Any, Any]) -> str:
    """``"app_label.ModelName.field_name"``; for an automatic M2M table, the M2M field's."""
    owner: Any = model._meta.auto_created  # the model declaring the M2M, or False
    if owner:
        for m2m in owner._meta.local_many_to_many:
            if m2m.remote_field.through is model:
                return f"{owner._meta.label}.{m2m.name}"
    return f"{model._meta.label}.{fk.name}"


def relations_to_reassign() -> list[Relation]:
    """The relations a link moves: ``ANONAUTH_LINK_REASSIGN`` minus the excluded ones."""
    wanted = conf.LINK_REASSIGN
    return [
        relation for relation in data_relations() if wanted == "all" or relation.label in wanted
    ]


def data_relations() -> list[Relation]:
    """The relations that carry a user's data: every relation to the user model minus
    ``ANONAUTH_LINK_EXCLUDE``, the user model's own permissions (``groups``,
    ``user_permissions``: the account's, never moved or exported) and the guest flag
    (:data:`GUEST_FLAG`), excluded even by a project's own list."""
    excluded = {*conf.LINK_EXCLUDE, GUEST_FLAG}
    user_label = get_user_model()._meta.label
    return [
        relation
        for relation in user_relations()
        if relation.label not in excluded and not _is_permission(relation.label, user_label)
    ]


def _is_permission(label: str, user_label: str) -> bool:
    owner, _, name = label.rpartition(".")
    return owner == user_label and name in PERMISSION_FIELDS


def authenticate_account(request: HttpRequest, login: str, password: str) -> Any:
    """The registered account for ``login`` (username or email) and ``password``.

    Rate limited like a login: every attempt per IP, and failed passwords per account
    (the normalised ``login``), both at ``ANONAUTH_LINK_RATE_LIMIT``, so a brute force
    spread over many addresses stops too; with django-allauth, its ``login_failed``
    limit as well, counted together with its login form's. Once an account's limit is
    reached even the right password is refused (:class:`RateLimited`) until the window
    passes. Raises :class:`InvalidCredentials` for a wrong pair, an inactive account or
    a guest.
    """
    check_rate(request, group=LINK_RATE_LIMIT_GROUP, rate=conf.LINK_RATE_LIMIT)
    failures = _AccountFailures(request, login)
    failures.check()
    account = authenticate(request, username=login, password=password)
    if account is None and "@" in login:
        account = authenticate(request, username=_username_for_email(login), password=password)
    if account is None or is_guest(account):
        failures.count()
        raise InvalidCredentials()
    return account


LINK_ACCOUNT_RATE_LIMIT_GROUP = "anonauth.link.account"
TOO_MANY_FAILURES = "Too many failed sign-ins to this account; try again later."


class _AccountFailures:
    """The failed passwords for one login: django-ratelimit's count in the rate-limit
    cache (``LINK_ACCOUNT_RATE_LIMIT_GROUP``, keyed by the normalised login), and,
    with django-allauth, its ``login_failed`` limit under the key its login form uses.
    Only failures count: :meth:`check` peeks, :meth:`count` adds one."""

    def __init__(self, request: HttpRequest, login: str) -> None:
        self.request = request
        self.login = normalised_login(login)
        self.allauth_key = _allauth_login_key(request, self.login)

    def check(self) -> None:
        usage = self._usage(rates.peek)
        if usage is not None and usage.should_limit:
            raise RateLimited(TOO_MANY_FAILURES, retry_after=max(usage.time_left, 1))
        if self.allauth_key is not None and not _allauth_consume(
            self.request, self.allauth_key, dry_run=True
        ):
            raise RateLimited(TOO_MANY_FAILURES)

    def count(self) -> None:
        self._usage(rates.hit)
        if self.allauth_key is not None:
            _allauth_consume(self.request, self.allauth_key, dry_run=False)

    def _usage(self, count: Callable[..., rates.Usage | None]) -> rates.Usage | None:
        rate = conf.LINK_RATE_LIMIT
        if rate is None:
            return None
        return count(self.request, group=LINK_ACCOUNT_RATE_LIMIT_GROUP, value=self.login, rate=rate)


def normalised_login(login: str) -> str:
    """The login a per-account count is kept under: NFKC, trimmed, lowercase (email
    lookups ignore case, so ``Owner@…`` and ``owner@…`` are one account)."""
    return unicodedata.normalize("NFKC", login).strip().lower()


def _allauth_login_key(request: HttpRequest, login: str) -> str | None:
    """allauth's ``login_failed`` key for ``login`` (the one its ``LoginForm`` counts
    under, through the account adapter), or None without allauth."""
    if not apps.is_installed("allauth.account"):
        return None
    from allauth.account.adapter import get_adapter

    adapter = get_adapter(request)
    key_for = getattr(adapter, "_get_login_attempts_cache_key", None)
    if key_for is None:  # allauth's own format (65.x)
        from django.contrib.sites.shortcuts import get_current_site

        return f"{get_current_site(request).domain}:{login}"
    return str(key_for(request, username=login))


def _allauth_consume(request: HttpRequest, key: str, *, dry_run: bool) -> bool:
    from allauth.core import ratelimit as allauth_ratelimit

    return bool(allauth_ratelimit.consume(request, action="login_failed", key=key, dry_run=dry_run))


def _username_for_email(email: str) -> str:
    model = get_user_model()
    matches = list(
        model._default_manager.filter(**{f"{model.get_email_field_name()}__iexact": email})[:2]
    )
    return matches[0].get_username() if len(matches) == 1 else ""


def known_labels() -> set[str]:
    return {relation.label for relation in user_relations()}


def unknown_labels(labels: Iterable[str]) -> list[str]:
    """The labels that name no relation to the user model (for the system check)."""
    known = known_labels()
    return [label for label in labels if label not in known]
