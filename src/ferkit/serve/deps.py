"""FastAPI dependencies shared by the routers."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from ferkit.serve.engine import Engine
from ferkit.serve.settings import Settings, get_settings

__all__ = ["EngineDep", "SettingsDep", "get_engine"]


def get_engine(conn: HTTPConnection) -> Engine:
    """The Engine loaded by the app's lifespan."""
    return conn.app.state.engine


#: route parameter types: ``settings: SettingsDep``, ``engine: EngineDep``
SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
