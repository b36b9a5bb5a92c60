#!/usr/bin/env python3
"""Checks the local WorkSpaces account-link emulator with boto3, unchanged but for endpoint_url.

Usage: check_emulator.py --endpoint http://127.0.0.1:PORT

Exercises all six account-link operations as two accounts (the emulator takes the 12-digit
access key id as the account id): create, get by id and by linked account, list with a
filter and with MaxResults=1 over several pages, accept; create + reject; create + delete;
and the botocore ClientError codes of a few failures. Exits non-zero on the first failed
check (an AssertionError or an unexpected botocore error).
"""

import argparse
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

SOURCE = "111111111111"
TARGET = "222222222222"
OTHER_TARGETS = ["333333333333", "444444444444"]
PENDING = "PENDING_ACCEPTANCE_BY_TARGET_ACCOUNT"


def client(endpoint, account):
    return boto3.client(
        "workspaces",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=account,
        aws_secret_access_key="emulator-secret",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def expect_error(code, call, **kwargs):
    """Calls `call(**kwargs)` and asserts it fails with botocore error code `code`."""
    try:
        call(**kwargs)
    except ClientError as error:
        got = error.response["Error"]["Code"]
        assert got == code, f"expected {code}, got {got}: {error}"
        assert error.response["ResponseMetadata"].get("RequestId"), "missing request id"
        return error
    raise AssertionError(f"expected {code}, but the call succeeded")


def list_all(c, **kwargs):
    """Lists every link page by page; returns (ids, number of pages)."""
    ids, pages, token = [], 0, None
    while True:
        args = dict(kwargs)
        if token:
            args["NextToken"] = token
        page = c.list_account_links(**args)
        pages += 1
        ids += [link["AccountLinkId"] for link in page["AccountLinks"]]
        token = page.get("NextToken")
        if not token:
            return ids, pages


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="emulator URL, e.g. http://127.0.0.1:4566")
    endpoint = parser.parse_args().endpoint

    source = client(endpoint, SOURCE)
    target = client(endpoint, TARGET)

    # Create, then read it back by id and by linked account from both sides.
    link = source.create_account_link_invitation(TargetAccountId=TARGET, ClientToken="boto3-create")[
        "AccountLink"
    ]
    link_id = link["AccountLinkId"]
    assert link_id.startswith("link-"), link
    assert link["AccountLinkStatus"] == PENDING, link
    assert (link["SourceAccountId"], link["TargetAccountId"]) == (SOURCE, TARGET), link
    replay = source.create_account_link_invitation(TargetAccountId=TARGET, ClientToken="boto3-create")
    assert replay["AccountLink"] == link, "client-token replay must return the same link"

    assert source.get_account_link(LinkId=link_id)["AccountLink"] == link
    assert target.get_account_link(LinkId=link_id)["AccountLink"] == link
    assert target.get_account_link(LinkedAccountId=SOURCE)["AccountLink"] == link
    assert source.get_account_link(LinkedAccountId=TARGET)["AccountLink"] == link

    # More invitations so that listing spans several pages.
    other_ids = [
        source.create_account_link_invitation(TargetAccountId=t)["AccountLink"]["AccountLinkId"]
        for t in OTHER_TARGETS
    ]
    ids, pages = list_all(source, MaxResults=1)
    assert ids == [link_id] + other_ids, ids
    assert pages == 3, f"expected 3 pages of one link, got {pages}"
    ids, _ = list_all(target, LinkStatusFilter=[PENDING])
    assert ids == [link_id], ids

    # Accept; the link is LINKED for both parties and can no longer be deleted.
    accepted = target.accept_account_link_invitation(LinkId=link_id)["AccountLink"]
    assert accepted["AccountLinkStatus"] == "LINKED", accepted
    assert source.get_account_link(LinkId=link_id)["AccountLink"]["AccountLinkStatus"] == "LINKED"
    ids, _ = list_all(source, LinkStatusFilter=["LINKED"], MaxResults=1)
    assert ids == [link_id], ids
    ids, _ = list_all(source, LinkStatusFilter=[PENDING])
    assert ids == other_ids, ids
    expect_error("ConflictException", source.delete_account_link_invitation, LinkId=link_id)
    expect_error("ConflictException", source.create_account_link_invitation, TargetAccountId=TARGET)

    # Create + reject.
    rejecting = client(endpoint, OTHER_TARGETS[0])
    rejected = rejecting.reject_account_link_invitation(LinkId=other_ids[0])["AccountLink"]
    assert rejected["AccountLinkStatus"] == "REJECTED", rejected
    expect_error("ConflictException", rejecting.accept_account_link_invitation, LinkId=other_ids[0])

    # Create + delete: only the source deletes, and the link is gone afterwards.
    expect_error(
        "AccessDeniedException",
        client(endpoint, OTHER_TARGETS[1]).delete_account_link_invitation,
        LinkId=other_ids[1],
    )
    deleted = source.delete_account_link_invitation(LinkId=other_ids[1])["AccountLink"]
    assert deleted["AccountLinkId"] == other_ids[1], deleted
    error = expect_error("ResourceNotFoundException", source.get_account_link, LinkId=other_ids[1])
    assert error.response.get("ResourceId") == other_ids[1], error.response

    # Errors as botocore sees them.
    expect_error("AccessDeniedException", source.accept_account_link_invitation, LinkId=link_id)
    expect_error("ResourceNotFoundException", target.get_account_link, LinkId="link-0000000000000000")
    expect_error("ValidationException", source.create_account_link_invitation, TargetAccountId=SOURCE)
    expect_error("ValidationException", source.get_account_link)
    try:
        source.get_account_link(LinkId="link-0000000000000000")
    except source.exceptions.ResourceNotFoundException:
        pass
    else:
        raise AssertionError("modeled exception class was not raised")

    print("boto3 emulator check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
