"""The set-based cascade delete (anonauth.deletion), on its own: plans, statements,
blockers and the fallback to Django's collector."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.db.models.signals import post_delete, pre_delete
from django.test.utils import CaptureQueriesContext, isolate_apps

from anonauth import db, deletion
from anonauth.deletion import Deletion, Plan, raw_delete
from anonauth.test import capture_signal
from tests.deletionapp.models import Photo, Place, Post, Restaurant, Tag, Thread
from tests.purge_helpers import exists, fill_cart, make_member
from tests.testapp.models import AccessLog, Basket, BasketItem, GiftWrap, Invoice, Review

pytestmark = pytest.mark.django_db


def user_plan() -> Plan:
    return Plan.build(get_user_model())


def labels(steps: tuple[deletion.CascadeStep, ...]) -> list[str]:
    return [step.label for step in steps]


class TestPlan:
    def test_children_come_before_their_parents(self) -> None:
        steps = labels(user_plan().steps)
        assert steps.index("testapp.BasketItem.basket") < steps.index("testapp.Basket.owner")

    def test_a_chain_step_knows_its_path_to_the_root(self) -> None:
        [item] = [step for step in user_plan().steps if step.label == "testapp.BasketItem.basket"]
        assert item.path == "basket__owner"
        assert item.parent is not None
        assert item.parent.label == "testapp.Basket.owner"

    def test_protect_and_restrict_are_blockers_not_steps(self) -> None:
        plan = user_plan()
        assert {"testapp.Invoice.customer", "testapp.GiftWrap.basket"} <= set(labels(plan.blockers))
        assert "testapp.Invoice.customer" not in labels(plan.steps)
        assert plan.fallback is None

    def test_a_plan_is_built_from_metadata_alone(self) -> None:
        with CaptureQueriesContext(connection) as queries:
            user_plan()
        assert len(queries) == 0


class TestDelete:
    def test_a_cascade_chain_goes(self) -> None:
        doomed, kept = make_member(), make_member()
        fill_cart(doomed, 2)
        fill_cart(kept, 1)
        deleted = user_plan().delete([doomed.pk])
        assert deleted == Deletion(
            {"testapp.BasketItem": 2, "testapp.Basket": 1, get_user_model()._meta.label: 1}, {}
        )
        assert (exists(doomed), exists(kept)) == (False, True)
        assert list(BasketItem.objects.values_list("basket__owner", flat=True)) == [kept.pk]

    def test_one_statement_per_step_whatever_the_rows(self) -> None:
        plan = user_plan()
        users = [make_member() for _ in range(3)]
        for user in users:
            fill_cart(user, 3)
            Review.objects.create(author=user, moderator=user, editor=user)
        with CaptureQueriesContext(connection) as queries:
            plan.delete([user.pk for user in users])
        assert len(queries) == len(plan.steps) + 1
        assert Basket.objects.count() == 0

    def test_set_null_set_default_and_set_update_the_rows(self) -> None:
        member, other = make_member(), make_member()
        review = Review.objects.create(author=member, moderator=member, editor=member)
        untouched = Review.objects.create(author=other, moderator=other, editor=other)
        deleted = user_plan().delete([member.pk])
        assert "testapp.Review" not in deleted.rows
        review.refresh_from_db()
        untouched.refresh_from_db()
        assert (review.author, review.moderator, review.editor) == (None, None, None)
        assert (untouched.author, untouched.moderator, untouched.editor) == (other, other, other)

    def test_no_signals_are_sent(self) -> None:
        member = make_member()
        fill_cart(member, 1)
        with capture_signal(pre_delete) as before, capture_signal(post_delete) as after:
            user_plan().delete([member.pk])
        assert (before, after, exists(member)) == ([], [], False)

    @isolate_apps("tests.testapp")
    def test_set_with_a_value(self) -> None:
        class Member(models.Model):  # noqa: DJ008
            class Meta:
                app_label = "testapp"

        class Post(models.Model):  # noqa: DJ008
            member = models.ForeignKey(Member, models.SET(0))

            class Meta:
                app_label = "testapp"

        [step] = Plan.build(Member).steps
        assert step.update_value() == 0


class TestBlocked:
    def test_protect_and_restrict_two_levels_down(self) -> None:
        invoiced, wrapped, free = make_member(), make_member(), make_member()
        Invoice.objects.create(customer=invoiced)
        GiftWrap.objects.create(basket=fill_cart(wrapped, 1))
        blocked = user_plan().blocked([invoiced.pk, wrapped.pk, free.pk])
        assert blocked == {
            invoiced.pk: "testapp.Invoice.customer",
            wrapped.pk: "testapp.GiftWrap.basket",
        }

    def test_a_do_nothing_row_blocks(self) -> None:
        logged, free = make_member(), make_member()
        AccessLog.objects.create(visitor=logged)
        assert user_plan().blocked([logged.pk, free.pk]) == {logged.pk: "testapp.AccessLog.visitor"}

    def test_only_the_given_ids_are_looked_at(self) -> None:
        invoiced, free = make_member(), make_member()
        Invoice.objects.create(customer=invoiced)
        assert user_plan().blocked([free.pk]) == {}

    def test_a_plan_without_blockers_asks_nothing(self) -> None:
        plan = Plan(get_user_model())
        with CaptureQueriesContext(connection) as queries:
            assert plan.blocked([1, 2]) == {}
        assert len(queries) == 0


class TestCollectorFallback:
    def test_a_cascade_cycle(self) -> None:
        thread, other = Thread.objects.create(title="doomed"), Thread.objects.create(title="kept")
        first = Post.objects.create(thread=thread)
        reply = Post.objects.create(thread=thread, reply_to=first)
        Post.objects.create(thread=other, reply_to=reply)  # goes with the post it replies to
        kept = Post.objects.create(thread=other)
        plan = Plan.build(Thread)
        assert plan.fallback == "deletionapp.Post.reply_to cascades in a cycle"
        assert plan.delete([thread.pk]) == Deletion(
            {"deletionapp.Post": 3, "deletionapp.Thread": 1}, {}
        )
        assert list(Post.objects.all()) == [kept]

    def test_a_generic_relation(self) -> None:
        photo, other = Photo.objects.create(), Photo.objects.create()
        for target in (photo, photo, other):
            Tag.objects.create(target=target)
        plan = Plan.build(Photo)
        assert plan.fallback == "deletionapp.Photo has a generic relation"
        assert plan.delete([photo.pk]).rows == {"deletionapp.Tag": 2, "deletionapp.Photo": 1}
        assert [tag.target for tag in Tag.objects.all()] == [other]

    def test_multi_table_inheritance(self) -> None:
        restaurant = Restaurant.objects.create(name="doomed", serves="soup")
        place = Place.objects.create(name="kept")
        plan = Plan.build(Place)
        assert plan.fallback == "deletionapp.Restaurant inherits from a concrete model"
        assert Plan.build(Restaurant).fallback == plan.fallback
        assert plan.delete([restaurant.pk]).rows == {
            "deletionapp.Restaurant": 1,
            "deletionapp.Place": 1,
        }
        assert list(Place.objects.all()) == [place]

    def test_protected_rows_are_tried_one_by_one(self) -> None:
        invoiced, wrapped, free = make_member(), make_member(), make_member()
        Invoice.objects.create(customer=invoiced)
        GiftWrap.objects.create(basket=fill_cart(wrapped, 1))
        plan = Plan(get_user_model(), fallback="forced by the test")
        deleted = plan.delete([invoiced.pk, wrapped.pk, free.pk])
        assert deleted.blocked == {invoiced.pk: "testapp.Invoice", wrapped.pk: "testapp.GiftWrap"}
        assert deleted.rows[get_user_model()._meta.label] == 1
        assert [exists(user) for user in (invoiced, wrapped, free)] == [True, True, False]


class TestRawDelete:
    def test_one_statement_no_signals(self) -> None:
        member, other = make_member(), make_member()
        for author in (member, member, other):
            Review.objects.create(author=author)
        with (
            capture_signal(post_delete) as calls,
            CaptureQueriesContext(connection) as queries,
        ):
            assert raw_delete(Review.objects.filter(author=member), db.alias()) == 2
        assert (len(queries), calls) == (1, [])
        assert list(Review.objects.values_list("author", flat=True)) == [other.pk]

    def test_nothing_to_delete(self) -> None:
        assert raw_delete(Review.objects.none(), db.alias()) == 0


class TestShapes:
    @isolate_apps("tests.testapp")
    def test_cycles_inheritance_and_custom_handlers_need_the_collector(self) -> None:
        class Member(models.Model):  # noqa: DJ008
            class Meta:
                app_label = "testapp"

        class Comment(models.Model):  # noqa: DJ008
            author = models.ForeignKey(Member, models.CASCADE)
            parent = models.ForeignKey("self", models.CASCADE, null=True)

            class Meta:
                app_label = "testapp"

        assert Plan.build(Member).fallback == "testapp.Comment.parent cascades in a cycle"

        class Person(models.Model):  # noqa: DJ008
            class Meta:
                app_label = "testapp"

        class Staff(Person):  # noqa: DJ008
            class Meta:
                app_label = "testapp"

        assert Plan.build(Staff).fallback == "testapp.Staff inherits from a concrete model"

        def archive(*args: Any) -> None:
            pass

        class Account(models.Model):  # noqa: DJ008
            class Meta:
                app_label = "testapp"

        class Note(models.Model):  # noqa: DJ008
            account = models.ForeignKey(Account, archive)

            class Meta:
                app_label = "testapp"

        assert Plan.build(Account).fallback == "testapp.Note.account has a custom on_delete"

    @isolate_apps("tests.testapp")
    def test_deep_chains_need_the_collector(self) -> None:
        class Level0(models.Model):  # noqa: DJ008
            class Meta:
                app_label = "testapp"

        previous: type[models.Model] = Level0
        for depth in range(1, deletion.MAX_DEPTH + 2):
            previous = type(
                f"Level{depth}",
                (models.Model,),
                {
                    "__module__": __name__,
                    "Meta": type("Meta", (), {"app_label": "testapp"}),
                    "up": models.ForeignKey(previous, models.CASCADE),
                },
            )
        assert "levels deep" in str(Plan.build(Level0).fallback)

    @isolate_apps("tests.testapp")
    def test_generic_relations_need_the_collector(self) -> None:
        class Tag(models.Model):  # noqa: DJ008
            content_type = models.ForeignKey(ContentType, models.CASCADE)
            object_id = models.PositiveIntegerField()
            target = GenericForeignKey("content_type", "object_id")

            class Meta:
                app_label = "testapp"

        class Member(models.Model):  # noqa: DJ008
            tags = GenericRelation(Tag)

            class Meta:
                app_label = "testapp"

        assert Plan.build(Member).fallback == "testapp.Member has a generic relation"

    @isolate_apps("tests.testapp")
    def test_do_nothing_is_left_to_the_database(self) -> None:
        class Member(models.Model):  # noqa: DJ008
            class Meta:
                app_label = "testapp"

        class Visit(models.Model):  # noqa: DJ008
            member = models.ForeignKey(Member, models.DO_NOTHING, db_constraint=False)

            class Meta:
                app_label = "testapp"

        assert Plan.build(Member) == Plan(Member)

    @isolate_apps("tests.testapp")
    def test_a_constrained_do_nothing_is_a_blocker(self) -> None:
        class Member(models.Model):  # noqa: DJ008
            class Meta:
                app_label = "testapp"

        class Visit(models.Model):  # noqa: DJ008
            member = models.ForeignKey(Member, models.DO_NOTHING)

            class Meta:
                app_label = "testapp"

        class Stamp(models.Model):  # noqa: DJ008
            visit = models.ForeignKey(Visit, models.DO_NOTHING)

            class Meta:
                app_label = "testapp"

        class Pass(models.Model):  # noqa: DJ008
            member = models.ForeignKey(Member, models.CASCADE)

            class Meta:
                app_label = "testapp"

        class Scan(models.Model):  # noqa: DJ008
            card = models.ForeignKey(Pass, models.DO_NOTHING)

            class Meta:
                app_label = "testapp"

        plan = Plan.build(Member)
        assert labels(plan.blockers) == ["testapp.Visit.member", "testapp.Scan.card"]
        assert labels(plan.steps) == ["testapp.Pass.member"]

    @isolate_apps("tests.testapp")
    def test_blockers_past_what_needs_the_collector_are_found(self) -> None:
        class Member(models.Model):  # noqa: DJ008
            class Meta:
                app_label = "testapp"

        class Comment(models.Model):  # noqa: DJ008
            author = models.ForeignKey(Member, models.CASCADE)
            parent = models.ForeignKey("self", models.CASCADE, null=True)

            class Meta:
                app_label = "testapp"

        class Flag(models.Model):  # noqa: DJ008
            comment = models.ForeignKey(Comment, models.DO_NOTHING)

            class Meta:
                app_label = "testapp"

        class Visit(models.Model):  # noqa: DJ008
            member = models.ForeignKey(Member, models.PROTECT)

            class Meta:
                app_label = "testapp"

        plan = Plan.build(Member)
        assert plan.fallback == "testapp.Comment.parent cascades in a cycle"
        assert labels(plan.blockers) == ["testapp.Flag.comment", "testapp.Visit.member"]

    @isolate_apps("tests.testapp")
    def test_plan_for_a_to_field_relation(self) -> None:
        class Member(models.Model):  # noqa: DJ008
            handle = models.CharField(max_length=10, unique=True)

            class Meta:
                app_label = "testapp"

        class Badge(models.Model):  # noqa: DJ008
            member = models.ForeignKey(Member, models.CASCADE, to_field="handle")

            class Meta:
                app_label = "testapp"

        plan = Plan.build(Member)
        assert plan.fallback is None
        assert [step.label for step in plan.steps] == ["testapp.Badge.member"]
        sql = str(plan.steps[0].rows([1, 2]).query)
        assert "handle" in sql
