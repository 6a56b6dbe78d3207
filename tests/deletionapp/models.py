"""Relation shapes the set-based deletion cannot express, for the deletion engine's tests.

None of these points at the user model, so the purge's plan is unaffected by them.
"""

from __future__ import annotations

from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.db import models


class Thread(models.Model):
    """Root of a ``CASCADE`` cycle: posts reply to posts."""

    title = models.CharField(max_length=50)

    def __str__(self) -> str:
        return self.title


class Post(models.Model):
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE)
    reply_to = models.ForeignKey("self", on_delete=models.CASCADE, null=True)

    def __str__(self) -> str:
        return f"post {self.pk}"


class Tag(models.Model):
    """Points at anything through a generic foreign key."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.PositiveIntegerField()
    target = GenericForeignKey("content_type", "object_id")

    def __str__(self) -> str:
        return f"tag of {self.target}"


class Photo(models.Model):
    """Has a generic relation: its tags go with it."""

    tags = GenericRelation(Tag)

    def __str__(self) -> str:
        return f"photo {self.pk}"


class Place(models.Model):
    """A concrete parent (multi-table inheritance)."""

    name = models.CharField(max_length=50)

    def __str__(self) -> str:
        return self.name


class Restaurant(Place):
    serves = models.CharField(max_length=50)
