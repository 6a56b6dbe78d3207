"""Every kind of relation to the user model, for the link tests."""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models.functions import Cast, Concat, Lower

USER = settings.AUTH_USER_MODEL


class Note(models.Model):
    """A plain ForeignKey."""

    author = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="notes")
    text = models.CharField(max_length=50)

    def __str__(self) -> str:
        return self.text


class Draft(models.Model):
    """A nullable ForeignKey."""

    editor = models.ForeignKey(USER, null=True, on_delete=models.SET_NULL, related_name="+")
    title = models.CharField(max_length=50)

    def __str__(self) -> str:
        return self.title


class Profile(models.Model):
    """A OneToOneField: the account keeps its own by default."""

    user = models.OneToOneField(USER, on_delete=models.CASCADE, related_name="link_profile")
    nickname = models.CharField(max_length=50)

    def __str__(self) -> str:
        return self.nickname


class Wallet(models.Model):
    """A ForeignKey with ``unique=True``."""

    owner = models.ForeignKey(USER, unique=True, on_delete=models.CASCADE, related_name="+")
    balance = models.IntegerField(default=0)

    def __str__(self) -> str:
        return str(self.balance)


class Vote(models.Model):
    """``unique_together`` including the user field."""

    voter = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    poll = models.CharField(max_length=20)
    choice = models.CharField(max_length=20)

    class Meta:
        unique_together = [("voter", "poll")]

    def __str__(self) -> str:
        return f"{self.poll}: {self.choice}"


class Bookmark(models.Model):
    """A conditional ``UniqueConstraint``: one *pinned* bookmark per user and url."""

    owner = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    url = models.CharField(max_length=100)
    pinned = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "url"], condition=models.Q(pinned=True), name="one_pinned_url"
            )
        ]

    def __str__(self) -> str:
        return self.url


class Team(models.Model):
    """ManyToMany fields: with the automatic through table and an explicit one."""

    name = models.CharField(max_length=50)
    fans = models.ManyToManyField(USER, related_name="+")
    members = models.ManyToManyField(USER, through="Membership", related_name="+")

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE)
    person = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=20, default="member")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "person"], name="one_membership")]

    def __str__(self) -> str:
        return f"{self.person} in {self.team}"


class Invoice(models.Model):
    """A PROTECT ForeignKey: would block deleting the guest if it were not moved first."""

    customer = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    amount = models.IntegerField()

    def __str__(self) -> str:
        return str(self.amount)


class Like(models.Model):
    """A GenericForeignKey: not a relation to the user model; receivers migrate it."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.CharField(max_length=40)
    target = GenericForeignKey("content_type", "object_id")

    def __str__(self) -> str:
        return f"like of {self.target}"


class KeyedProfile(models.Model):
    """A OneToOneField that is the primary key: a profile keyed by its user. Linking
    changes that key, so the rows that reference the profile must follow it."""

    user = models.OneToOneField(
        USER, primary_key=True, on_delete=models.CASCADE, related_name="keyed_profile"
    )
    bio = models.CharField(max_length=50, blank=True)

    def __str__(self) -> str:
        return self.bio


class ProfilePhoto(models.Model):
    """Rows that reference a :class:`KeyedProfile` by its key; one cover photo each."""

    profile = models.ForeignKey(KeyedProfile, on_delete=models.CASCADE, related_name="photos")
    caption = models.CharField(max_length=50)
    cover = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["profile"], condition=models.Q(cover=True), name="one_cover_photo"
            )
        ]

    def __str__(self) -> str:
        return self.caption


class Tag(models.Model):
    """Expression unique constraints: one tag per name whatever its case, and one
    *pinned* tag per colour whatever its case."""

    owner = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=50)
    colour = models.CharField(max_length=20, blank=True)
    pinned = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("name"), "owner", name="one_tag_name_any_case"),
            models.UniqueConstraint(
                "owner",
                Lower("colour"),
                condition=models.Q(pinned=True),
                name="one_pinned_colour_any_case",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Page(models.Model):
    """An expression unique constraint that reads the user field inside a function: one
    path ``"<owner id>/<slug>"`` whatever its case."""

    owner = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    slug = models.CharField(max_length=50)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower(
                    Concat(
                        Cast("owner", models.CharField(max_length=20)), models.Value("/"), "slug"
                    )
                ),
                name="one_page_path",
            )
        ]

    def __str__(self) -> str:
        return self.slug


class Badge(models.Model):
    """A unique constraint whose NULLs are not distinct (``nulls_distinct=False``, on
    databases that have it): one badge per level, and one without a level."""

    owner = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="+")
    level = models.PositiveSmallIntegerField(null=True, blank=True)
    label = models.CharField(max_length=20)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "level"], nulls_distinct=False, name="one_badge_per_level"
            )
        ]

    def __str__(self) -> str:
        return self.label
