"""Where the archive lives and how to reach it: one URI, one set of storage options.

Writer and readers both start here. An archive is a local directory or an object
store URI (``s3://bucket/prefix``, ``gs://``, ``abfss://``); it is always handled as
a URI string, never as a ``Path``, so ``s3://b/p`` stays what it is. The Delta table lives at
``<archive>/runs`` (``docs/archive.md``), the search index of each of its data
files under ``<archive>/runs/_search``. Storage options are delta-rs's
(``object_store``) keys; given as an argument they are used as they are, else they
are read from ``FLOWRUN_S3_*`` and the standard ``AWS_*`` variables, and the same
settings build the pyarrow filesystem readers use for remote files, so writer and
readers always talk to the same endpoint with the same credentials.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from oltp.arguments import path_text, string_mapping
from oltp.errors import InvalidArgument
from sync.errors import ArchiveUnavailable

TABLE = "runs"
# Search indexes, one per data file (``sync.search_index``): a directory of the table
# whose name starts with "_", which Delta readers and delta-rs's vacuum leave alone.
SEARCH_DIR = "_search"
_INDEX_SUFFIX = ".arrow"
# Object stores: S3 and S3-compatible servers (tested against moto's), Google Cloud Storage, and
# Azure as abfs[s]://<container>@<account>.dfs.core.windows.net/<path>. Readers reach S3 with a client
# built from delta-rs's options and the others with pyarrow's clients and their default credentials.
# az:// is refused: delta-rs takes it, but pyarrow has no such scheme, so nothing could read it back.
_REMOTE_SCHEMES = ("s3", "s3a", "gs", "abfs", "abfss")
# pyarrow's GCS client retries for 15 minutes by default, deaf to Ctrl-C: an unreachable store (or
# one without credentials) becomes ArchiveUnavailable within seconds instead.
_GCS_RETRY = timedelta(seconds=5)
# Our advisory lock in PostgreSQL keeps writers one at a time, so delta-rs needs no
# locking provider (DynamoDB) for S3: renames it does cannot race another writer of ours.
_S3_DEFAULTS = {"AWS_S3_ALLOW_UNSAFE_RENAME": "true"}
# delta-rs prints an error's causes one per line, with terminal colours and arrows.
_DECORATION = re.compile(r"\x1b\[[0-9;]*m|\u21b3")


@dataclass(frozen=True)
class ArchiveLocation:
    """A canonical archive URI and the storage options that reach it."""

    uri: str
    storage_options: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def resolve(
        cls, archive: str | os.PathLike[str] | ArchiveLocation, storage_options: Mapping[str, str] | None = None
    ) -> ArchiveLocation:
        """A location from a local path or a URI; options from the argument, else the environment."""
        given = None if storage_options is None else string_mapping(storage_options, "storage_options")
        if isinstance(archive, ArchiveLocation):
            return archive if given is None else cls(archive.uri, given)
        uri = archive_uri(path_text(archive, "archive"))
        options = given if given is not None else options_from_env(os.environ) if is_remote(uri) else {}
        if uri.startswith(("s3://", "s3a://")):
            options = {**_S3_DEFAULTS, **options}
        return cls(uri, options)

    @property
    def is_local(self) -> bool:
        """True for a directory on this machine."""
        return not is_remote(self.uri)

    @property
    def table_uri(self) -> str:
        """The Delta table of runs (with their steps and attempts)."""
        return f"{self.uri}/{TABLE}"

    def file_uri(self, relative: str) -> str:
        """The full location of a data file named relative to the table (as the Delta log names it)."""
        return f"{self.table_uri}/{relative}"

    def search_index_path(self, relative: str) -> str:
        """The search index of a data file, relative to the table like the data file's own path."""
        return f"{SEARCH_DIR}/{relative}{_INDEX_SUFFIX}"

    @staticmethod
    def indexed_file(index_path: str) -> str | None:
        """The data file (relative to the table) whose index ``search_index_path`` named so, or None."""
        prefix = f"{SEARCH_DIR}/"
        if not index_path.startswith(prefix) or not index_path.endswith(_INDEX_SUFFIX):
            return None
        return index_path[len(prefix) : -len(_INDEX_SUFFIX)]

    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """A pyarrow filesystem for the data files and the table's path on it."""
        fs, root = self.root_filesystem()
        return fs, f"{root}/{TABLE}"

    def root_filesystem(self) -> tuple[pafs.FileSystem, str]:
        """A pyarrow filesystem for the archive and the archive root's path on it."""
        if self.is_local:
            return pafs.LocalFileSystem(), self.uri
        parsed = urlparse(self.uri)
        path = f"{parsed.netloc}{parsed.path}"
        if parsed.scheme in ("s3", "s3a"):
            return _s3_filesystem(self.storage_options), path
        if parsed.scheme == "gs":
            return pafs.GcsFileSystem(retry_time_limit=_GCS_RETRY), path
        fs, path = pafs.FileSystem.from_uri(self.uri)
        return fs, path

    def in_table(self) -> str | None:
        """ "a Delta table" or "inside the Delta table <uri>" when ``enclosing_table`` finds one, else None."""
        enclosing = self.enclosing_table()
        if enclosing is None:
            return None
        return "a Delta table" if enclosing == self.uri else f"inside the Delta table {enclosing}"

    def enclosing_table(self) -> str | None:
        """The Delta table this location is, or lies inside (a ``_delta_log`` at it or above it), or None."""
        fs, root = self.root_filesystem()
        parts = root.rstrip("/").split("/")
        places = ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]
        infos = fs.get_file_info([f"{place}/_delta_log" for place in places])
        for place, info in zip(places, infos, strict=True):
            if info.type == pafs.FileType.Directory:
                return place or "/" if self.is_local else f"{urlparse(self.uri).scheme}://{place}"
        return None

    @contextmanager
    def reached(self) -> Iterator[None]:
        """Turn an object store client's ``OSError`` (pyarrow's or delta-rs's) into ``ArchiveUnavailable``.

        Used where jobs and readers reach the archive: the v1 check (their first request) and
        loading the table's log; not around every file read. A local directory's ``OSError``
        already names its path and stays what it is.
        """
        try:
            yield
        except (OSError, pa.ArrowException) as exc:  # pyarrow's GCS client raises some as ArrowException
            if self.is_local:
                raise
            raise ArchiveUnavailable(f"the archive {self.describe()} is unavailable: {self._reason(exc)}") from exc

    def _reason(self, exc: Exception) -> str:
        """The client's message on one line, without any credential the options hold."""
        lines = (_DECORATION.sub("", line).strip() for line in str(exc).splitlines())
        reason = ": ".join(line for line in lines if line) or type(exc).__name__
        for key, value in self.storage_options.items():
            # Only a value long enough to be a secret: replacing a short one would garble the message.
            if len(value) >= 8 and any(word in key.upper() for word in ("SECRET", "TOKEN", "PASSWORD")):
                reason = reason.replace(value, "***")
        return reason

    def describe(self) -> str:
        """The URI, for messages (never the credentials)."""
        return self.uri


def is_remote(uri: str) -> bool:
    """True for an object store URI."""
    scheme = urlparse(uri).scheme.lower()
    return scheme in _REMOTE_SCHEMES


def canonical_uri(text: str) -> str:
    """One spelling per location: local paths absolute and resolved, URIs without a trailing slash."""
    text = text.strip()
    if text.startswith("file://"):
        text = text[len("file://") :]
    scheme = urlparse(text).scheme.lower()
    if scheme in _REMOTE_SCHEMES:
        parsed = urlparse(text)
        path = parsed.path.rstrip("/")
        return f"{scheme}://{parsed.netloc}{path}"
    if scheme == "az":
        raise InvalidArgument(
            f"unsupported archive URI {text!r}: readers cannot reach az:// URIs; name the same place as"
            " abfss://<container>@<account>.dfs.core.windows.net/<path>"
        )
    if "://" in text:
        raise InvalidArgument(f"unsupported archive URI {text!r}: use a directory or one of {_REMOTE_SCHEMES}")
    return os.path.realpath(os.path.expanduser(text))


def archive_uri(text: str) -> str:
    """``canonical_uri(text)``; a local one refused when a file stands where it or a parent directory should be.

    A missing directory is an empty store (the writer creates it), but a file there is a slip that a
    reader would otherwise answer with zeros and the writer fail on later: say so at once.
    """
    uri = canonical_uri(text)
    if is_remote(uri):
        return uri  # the object store's business
    place = uri
    while not os.path.exists(place) and os.path.dirname(place) != place:
        place = os.path.dirname(place)
    if not os.path.isdir(place):
        what = "is not a directory" if place == uri else f"cannot be created: {place} is not a directory"
        raise InvalidArgument(f"archive {text} {what}")
    return uri


def options_from_env(env: Mapping[str, str]) -> dict[str, str]:
    """delta-rs storage options from ``FLOWRUN_S3_*`` and the standard ``AWS_*`` variables."""
    options: dict[str, str] = {}
    endpoint = env.get("FLOWRUN_S3_ENDPOINT") or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        if env.get(key):
            options[key] = env[key]
    region = env.get("FLOWRUN_S3_REGION") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        options["AWS_REGION"] = region
    allow_http = env.get("FLOWRUN_S3_ALLOW_HTTP", "").lower() in ("1", "true", "yes")
    if allow_http or (endpoint or "").startswith("http://"):
        options["AWS_ALLOW_HTTP"] = "true"
    return options


def _s3_filesystem(options: Mapping[str, str]) -> pafs.S3FileSystem:
    """pyarrow's S3 client configured from the same options delta-rs gets."""
    kwargs: dict[str, Any] = {"region": options.get("AWS_REGION", "us-east-1")}
    if options.get("AWS_ACCESS_KEY_ID"):
        kwargs["access_key"] = options["AWS_ACCESS_KEY_ID"]
        kwargs["secret_key"] = options.get("AWS_SECRET_ACCESS_KEY", "")
        if options.get("AWS_SESSION_TOKEN"):
            kwargs["session_token"] = options["AWS_SESSION_TOKEN"]
    endpoint = options.get("AWS_ENDPOINT_URL")
    if endpoint:
        parsed = urlparse(endpoint)
        if parsed.scheme:
            kwargs["endpoint_override"] = parsed.netloc + parsed.path.rstrip("/")
            kwargs["scheme"] = parsed.scheme
        else:
            kwargs["endpoint_override"] = endpoint
            if options.get("AWS_ALLOW_HTTP") == "true":
                kwargs["scheme"] = "http"
    return pafs.S3FileSystem(**kwargs)
