"""The git source: mirrors of config repositories, snapshots of revisions, webhooks and polling."""
