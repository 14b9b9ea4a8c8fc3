"""Typed dependencies on what create_app keeps in app.state for the routers: its settings, the local time
zone and the key cursors are signed with (the session and its factory are app.db's)."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Request

from app.settings import Settings


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_local_tz(request: Request) -> ZoneInfo:
    """The time zone of the quality system's clock and of reporting dates (AVVIK_LOCAL_TIMEZONE)."""
    local: ZoneInfo = request.app.state.local_tz
    return local


def get_cursor_key(request: Request) -> bytes:
    """The key this installation signs page cursors with (app.pagination.cursor_key)."""
    key: bytes = request.app.state.cursor_key
    return key


SettingsDep = Annotated[Settings, Depends(get_settings)]
LocalTzDep = Annotated[ZoneInfo, Depends(get_local_tz)]
CursorKeyDep = Annotated[bytes, Depends(get_cursor_key)]
