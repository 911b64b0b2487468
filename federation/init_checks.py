"""What `peernet node init` and `peernet hub init` check before they write anything.

An init that failed half way used to leave key files, tables and users behind, and the retry
then failed on what the first attempt had left. Both inits now run in two phases: every
check first (these functions), then the writes, with the config file written last, so its
presence means the init finished. Checks may create empty directories (harmless to a
retry); they write nothing else. A key file left by an init that did not finish (no config
file yet) is reused when it opens with the same passphrase, so a retry completes; one that
does not open is refused with the command that removes it.

The config directory is created (0700) when missing rather than refused: it holds only the
config file, and the mkdir the README used to lack was the first thing a newcomer tripped
on. When it cannot be created, the message gives the mkdir command to run.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path

from federation.cli_errors import CliError
from federation.keystore import KeystoreError, NodeKeys

__all__ = ["MIN_PASSPHRASE", "check_passphrase", "leftover_keys", "prepare_config_path",
           "prepare_dir"]

MIN_PASSPHRASE = 12


def check_passphrase(phrase: str) -> None:
    if len(phrase) < MIN_PASSPHRASE:
        raise CliError(f"the passphrase must have at least {MIN_PASSPHRASE} characters",
                       "weak_passphrase")


def prepare_dir(path: Path, what: str) -> None:
    """Create `path` (0700, with parents) if missing and prove a file can be written in it."""
    quoted = shlex.quote(str(path))
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create the {what} {path} ({exc.strerror}): create it with "
                       f"`mkdir -p -m 700 {quoted}` as a user who may, then run init again",
                       "dir_unusable") from None
    if not path.is_dir():
        raise CliError(f"the {what} {path} is not a directory", "dir_unusable")
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".peernet-init-"):
            pass
    except OSError as exc:
        raise CliError(f"cannot write in the {what} {path} ({exc.strerror}): give the user "
                       f"running peernet write access (`chown` / `chmod u+w {quoted}`)",
                       "dir_unusable") from None


def prepare_config_path(config_path: Path) -> None:
    """Refuse an existing config file (or a link where it would go); prepare its directory."""
    if os.path.lexists(config_path):
        raise CliError(f"the config file {config_path} already exists: this server is "
                       "initialised (remove the file only to start again from scratch)",
                       "config_exists")
    prepare_dir(config_path.absolute().parent, "config directory")


def leftover_keys(path: Path, phrase: str) -> NodeKeys | None:
    """The keys in a key file an unfinished init left (reused by the retry), or None when
    there is no such file; a file that does not open with `phrase` is refused."""
    if not os.path.lexists(path):
        return None
    try:
        return NodeKeys.load(path, phrase)
    except KeystoreError:
        raise refuse_leftover(path) from None


def refuse_leftover(path: Path) -> CliError:
    return CliError(f"the key file {path} is left from an init that did not finish and does "
                    f"not open with this passphrase: use that init's passphrase, or remove it "
                    f"(`rm {shlex.quote(str(path))}`) and run init again", "key_file_exists")
