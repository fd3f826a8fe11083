"""The schema of imagespec.yaml and of profiles, as pydantic v2 models.

Unknown keys are errors everywhere (``extra="forbid"``).  The models hold plain
values only; where each value came from is kept beside them (see load.py), so
that error messages and provenance can point at file:line:col.
"""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

# A scalar osimage attribute value as written in YAML; integers are kept as text
# (the loader refuses floats and reformatted integers: their text would change).
AttrValue = Union[StrictStr, StrictInt]
Attributes = dict[str, Optional[AttrValue]]
StrList = list[StrictStr]


class Strict(BaseModel):
    """Base: unknown keys are errors, and models are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class BuildOptions(Strict):
    """How a director builds and packs its images."""

    jobs: Optional[Union[StrictInt]] = Field(default=None, ge=1, le=256)
    method: Literal["cpio", "squashfs"] = "cpio"
    compress: Literal["gzip", "pigz", "xz"] = "gzip"
    generations: StrictInt = Field(default=2, ge=0, le=100)


class DistroOverride(Strict):
    """A director's override of some distro fields (e.g. a test package repository)."""

    osvers: Optional[StrictStr] = None
    osarch: Optional[StrictStr] = None
    family: Optional[StrictStr] = None
    pkgdir: Optional[Union[StrictStr, StrList]] = None
    otherpkgdir: Optional[StrictStr] = None
    attributes: Attributes = Field(default_factory=dict)


class Distro(Strict):
    """An operating system release images are built from."""

    osvers: StrictStr
    osarch: StrictStr
    family: StrictStr
    pkgdir: Union[StrictStr, StrList]
    otherpkgdir: Optional[StrictStr] = None
    attributes: Attributes = Field(default_factory=dict)


class RolloutSettings(Strict):
    """How `imagespec rollout` reboots a director's nodes (each has a command line option)."""

    reserved: StrList = Field(default_factory=list)  # xCAT groups whose nodes are never rebooted
    canary: StrictInt = Field(default=1, ge=0, le=10_000)
    batch: Union[StrictInt, StrictStr] = "10%"  # nodes per batch, or a percentage of those due
    max_failed: StrictInt = Field(default=0, ge=0)
    wait_boot: StrictInt = Field(default=900, ge=1, le=86_400)  # seconds a batch may take to boot

    @field_validator("batch")
    @classmethod
    def _batch_size(cls, value: Union[int, str]) -> Union[int, str]:
        batch_size(value)
        return value


def batch_size(value: Union[int, str]) -> tuple[int, bool]:
    """A batch as (number, is_percentage): 5, "5" or "25%"; ValueError when it is neither."""
    text = str(value).strip()
    percent = text.endswith("%")
    digits = text[:-1] if percent else text
    if not digits.isdigit() or not 1 <= int(digits) <= (100 if percent else 100_000):
        raise ValueError(
            f"batch {text!r} is neither a number of nodes (1 or more) nor a percentage (1% to 100%)"
        )
    return int(digits), percent


class Director(Strict):
    """An xCAT management node (or a local directory) that images are reconciled to."""

    branch: Optional[StrictStr] = None
    host: Optional[StrictStr] = None
    install_root: StrictStr = "/install"
    prefix: StrictStr = ""
    builder: Literal["xcat", "native", "none"] = "xcat"
    build: BuildOptions = Field(default_factory=BuildOptions)
    distros: dict[str, DistroOverride] = Field(default_factory=dict)
    nodes: dict[str, StrictStr] = Field(default_factory=dict)  # noderange -> image
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)


class Variant(Strict):
    """A boot variant of an image: its own osimage `<image>-<variant>` on the image's root.

    It differs from the image only in attributes nodeset reads (validate.py
    VARIANT_ATTRIBUTES), so it costs a define and never a build.
    """

    attributes: Attributes = Field(default_factory=dict)
    description: StrictStr = ""  # for people (show); never written to xCAT


class Image(Strict):
    """One xCAT osimage: a profile built for a distro."""

    profile: StrictStr
    distro: StrictStr
    attributes: Attributes = Field(default_factory=dict)
    frozen: StrictBool = False
    directors: Optional[StrList] = None  # the directors that build it; None: every one
    variants: dict[str, Variant] = Field(default_factory=dict)  # variant name -> variant

    def on(self, director: str) -> bool:
        """Whether the image is built and defined on `director`."""
        return self.directors is None or director in self.directors


def variant_osimage(image: str, variant: str) -> str:
    """The osimage name of an image's boot variant."""
    return f"{image}-{variant}"


class Site(Strict):
    """imagespec.yaml."""

    site: StrictStr
    defaults: Attributes = Field(default_factory=dict)
    distros: dict[str, Distro] = Field(default_factory=dict)
    directors: dict[str, Director] = Field(default_factory=dict)
    images: dict[str, Image] = Field(default_factory=dict)
    builtin_postscripts: StrList = Field(default_factory=list)
    # the director commands act on when nothing else chooses one (docs: Directors)
    default_director: Optional[StrictStr] = None

    def osimages_on(self, director: str) -> dict[str, str]:
        """Every osimage the director defines -> the image it belongs to (itself, or the
        image a boot variant shares its root with)."""
        owners: dict[str, str] = {}
        for name, image in self.images.items():
            if image.on(director):
                owners[name] = name
                owners.update({variant_osimage(name, v): name for v in image.variants})
        return owners


# Where a sync entry's sources are: `from: director` names files on the director itself
# (absolute paths, kept out of git); without `from` they are files under synclists/.
SYNC_FROM = ("director",)


class SyncEntry(Strict):
    """One synclist entry; merged by the image paths it writes (resolve.sync_path).

    `from` is a Python keyword, so the field is `from_` with the YAML key as its alias.
    """

    src: Optional[Union[StrictStr, StrList]] = None
    dest: StrictStr
    mode: Literal["copy", "append", "merge", "execute", "executealways"] = "copy"
    nodes: Optional[StrictStr] = None
    drop: StrictBool = False
    from_: Optional[StrictStr] = Field(default=None, alias="from")

    @field_validator("from_")
    @classmethod
    def _known_from(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and value not in SYNC_FROM:
            raise ValueError(
                f"'{value}' is not a place imagespec reads sync sources from; write"
                " 'from: director' for a file on the director, or leave 'from' out for a"
                " file under synclists/"
            )
        return value

    @model_validator(mode="after")
    def _src_unless_drop(self) -> SyncEntry:
        if self.drop and self.from_ is not None:
            raise ValueError(
                "a 'drop' removes by image path, wherever the source was; remove 'from'"
            )
        if self.drop and self.src is not None and not self.dest.endswith("/"):
            raise ValueError(
                "a 'drop' of a file dest names only 'dest'; remove 'src'"
                " ('src' with 'drop' picks files of a directory dest ending in '/')"
            )
        if not self.drop and not self.sources:
            raise ValueError("'src' is required (or 'drop: true' to remove an inherited entry)")
        return self

    @property
    def sources(self) -> list[str]:
        """src as a list, whichever form the YAML used."""
        if self.src is None:
            return []
        return [self.src] if isinstance(self.src, str) else list(self.src)

    @property
    def from_director(self) -> bool:
        """Whether the sources are files on the director (absolute paths), not in git."""
        return self.from_ == "director"


class Profile(Strict):
    """profiles/<name>.yaml."""

    description: StrictStr = ""
    inherits: StrList = Field(default_factory=list)
    packages: StrList = Field(default_factory=list)
    otherpkgs: StrList = Field(default_factory=list)
    erase: StrList = Field(default_factory=list)
    erase_first: StrList = Field(default_factory=list)  # `-name`: erased before the install
    exclude: StrList = Field(default_factory=list)
    sync: list[SyncEntry] = Field(default_factory=list)
    postinstall: StrList = Field(default_factory=list)
    postscripts: StrList = Field(default_factory=list)
    postbootscripts: StrList = Field(default_factory=list)
    litefile: dict[str, Optional[StrictStr]] = Field(default_factory=dict)
    attributes: Attributes = Field(default_factory=dict)


# The profile lists merged by the list rule of SPEC §4 (render/kinds.py says how
# each is rendered); in script lists `-name` removes the script whatever its arguments.
LIST_FIELDS = (
    "packages",
    "otherpkgs",
    "erase",
    "erase_first",
    "exclude",
    "postinstall",
    "postscripts",
    "postbootscripts",
)
SCRIPT_FIELDS = ("postinstall", "postscripts", "postbootscripts")

# xCAT postscripts that ship with xCAT and need no file in postscripts/.
# Sites extend this with `builtin_postscripts:` in imagespec.yaml.
XCAT_BUILTIN_POSTSCRIPTS = frozenset(
    {
        "syncfiles",
        "otherpkgs",
        "confignetwork",
        "configeth",
        "configib",
        "remoteshell",
        "syslog",
        "setupntp",
        "hardeths",
        "enablekdump",
        "mountpoint",
        "setroute",
        "updatenetwork",
        "xcatdsklspost",
        "addsiteyum",
        "setuprepo",
        "routeop",
        "ospkgs",
        "sudoer",
        "nfsmounts",
        "servicenode",
        "setupLDAP",
    }
)

# xCAT litefile options (litefile table); blank means tmpfs,rw.
LITEFILE_OPTIONS = frozenset(
    {
        "tmpfs",
        "persistent",
        "localdisk",
        "rw",
        "ro",
        "con",
        "link",
        "tmpfs,rw",
        "link,ro",
        "link,persistent",
        "link,con",
    }
)

MERGE_TARGETS = frozenset({"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"})

# Built-in osimage attribute defaults, the lowest level of attribute precedence.
BUILTIN_ATTRIBUTES: dict[str, str] = {
    "imagetype": "linux",
    "osname": "Linux",
    "provmethod": "netboot",
}
