from tests.helpers import memory_site, site_files


def test_minimal_site_renders_pkglist_synclist_and_stanza() -> None:
    view = memory_site(site_files({"p": {"packages": ["a", "b", "-a"]}}))
    rendered = view.render("main")
    image = rendered.images["img-p"]
    assert image.resolved.values("packages") == ["b"]
    assert sorted(rendered.files) == [
        "p/custom/netboot/rocky/img-p.pkglist",
        "p/custom/netboot/rocky/img-p.stanza",
        "p/custom/netboot/rocky/img-p.synclist",
    ]
