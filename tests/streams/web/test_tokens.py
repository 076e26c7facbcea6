"""The gateway's token file: hashes only, names and rights, changes seen without a restart."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from streams.web.tokens import TokenError, TokenFile


def test_add_list_revoke_and_only_hashes_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    admin = TokenFile(path)
    token = admin.add("site-1", ["S1", "S2"], registry=False, admin=False)
    other = admin.add("registry-app", [], registry=True, admin=False)
    assert token != other and token.startswith("mst_") and len(token) > 40

    text = path.read_text()
    assert token not in text and other not in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    names = [e.rights.name for e in admin.entries()]
    assert names == ["site-1", "registry-app"]
    assert json.loads(text)["tokens"][0]["sites"] == ["S1", "S2"]

    gateway = TokenFile(path)  # another process's view of the same file
    rights = gateway.rights(token)
    assert rights is not None and rights.sites == {"S1", "S2"} and not rights.admin
    assert gateway.rights(token + "x") is None and gateway.rights("") is None

    admin.revoke("site-1")
    assert gateway.rights(token) is None  # no restart: the file changed
    assert gateway.rights(other) is not None
    third = admin.add("site-1", ["S3"], registry=False, admin=False)  # the name is free again
    assert gateway.rights(third) is not None and gateway.rights(third).sites == {"S3"}  # type: ignore[union-attr]


def test_mistakes_are_named(tmp_path: Path) -> None:
    tokens = TokenFile(tmp_path / "tokens.json")
    tokens.add("a", ["S1"], registry=False, admin=False)
    with pytest.raises(TokenError, match="'a' exists"):
        tokens.add("a", ["S2"], registry=False, admin=False)
    with pytest.raises(TokenError, match="needs rights"):
        tokens.add("b", [], registry=False, admin=False)
    with pytest.raises(TokenError, match="--name 'two words'"):
        tokens.add("two words", ["S1"], registry=False, admin=False)
    with pytest.raises(TokenError, match="no token named 'zzz'"):
        tokens.revoke("zzz")


def test_a_broken_file_keeps_the_last_good_tokens(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token = TokenFile(path).add("a", ["S1"], registry=False, admin=False)
    gateway = TokenFile(path)
    assert gateway.rights(token) is not None
    path.write_text("{ half written")
    assert gateway.rights(token) is not None
    path.unlink()
    assert gateway.rights(token) is None and len(gateway) == 0
