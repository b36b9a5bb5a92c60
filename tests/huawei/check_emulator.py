#!/usr/bin/env python3
"""Checks the local Huawei Cloud RAM emulator with the official Python SDK, unchanged but for
the endpoint.

Usage: check_emulator.py --endpoint http://127.0.0.1:PORT --ak AK --sk SK
                         --domain-id RECEIVER --sender SENDER

The AK/SK pair must be registered with the emulator as RECEIVER's. Creates three invitations
from SENDER to RECEIVER through the emulator's test hook, then as RECEIVER with
`huaweicloudsdkram`'s RamClient (GlobalCredentials, so requests are SDK-HMAC-SHA256 signed
and carry X-Domain-Id): searches them (filtered, and with limit=1 over several pages),
accepts one, rejects one, checks that answering again and answering an unknown id fail with
the SDK's ClientRequestException, and that a wrong SK fails with APIGW.0301 (HTTP 401).
Exits non-zero on the first failed check.
"""

import argparse
import json
import sys
import urllib.request

from huaweicloudsdkcore.auth.credentials import GlobalCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkram.v1 import (
    AcceptResourceShareInvitationRequest,
    RamClient,
    RejectResourceShareInvitationRequest,
    SearchResourceShareInvitationReqBody,
    SearchResourceShareInvitationRequest,
)


def client(endpoint, ak, sk, domain_id):
    config = HttpConfig.get_default_config()
    # Only matters for https endpoints; the emulator serves plain http.
    config.ignore_ssl_verification = True
    config.timeout = (5, 10)
    credentials = GlobalCredentials(ak, sk, domain_id)
    return (
        RamClient.new_builder()
        .with_http_config(config)
        .with_credentials(credentials)
        .with_endpoints([endpoint])
        .build()
    )


def create_invitation(endpoint, sender, receiver, name):
    body = json.dumps(
        {
            "sender_account_id": sender,
            "receiver_account_id": receiver,
            "resource_share_name": name,
        }
    ).encode()
    request = urllib.request.Request(
        endpoint + "/_emulator/huawei/invitations",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201, response.status
        return json.load(response)["resource_share_invitation_id"]


def search(ram, **kwargs):
    request = SearchResourceShareInvitationRequest(
        body=SearchResourceShareInvitationReqBody(**kwargs)
    )
    return ram.search_resource_share_invitation(request)


def expect_error(status, code, call, *args):
    """Calls `call(*args)` and asserts it raises ClientRequestException(status, code)."""
    try:
        call(*args)
    except ClientRequestException as error:
        assert error.status_code == status, (error.status_code, status, str(error))
        assert error.error_code == code, (error.error_code, code, str(error))
        assert error.request_id, "the error carries the X-Request-Id"
        return error
    raise AssertionError(f"expected {code} ({status})")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--ak", required=True)
    parser.add_argument("--sk", required=True)
    parser.add_argument("--domain-id", required=True)
    parser.add_argument("--sender", required=True)
    args = parser.parse_args()
    endpoint = args.endpoint.rstrip("/")

    ids = [
        create_invitation(endpoint, args.sender, args.domain_id, f"share-{n}")
        for n in range(3)
    ]
    ram = client(endpoint, args.ak, args.sk, args.domain_id)

    # Search: all, one by id, and limit=1 over every page.
    found = search(ram)
    assert found.status_code == 200
    assert [i.resource_share_invitation_id for i in found.resource_share_invitations] == ids
    first = found.resource_share_invitations[0]
    assert first.status == "pending", first.status
    assert first.sender_account_id == args.sender
    assert first.receiver_account_id == args.domain_id
    assert first.resource_share_name == "share-0"
    one = search(ram, resource_share_invitation_ids=[ids[1]], status="pending")
    assert [i.resource_share_invitation_id for i in one.resource_share_invitations] == [ids[1]]
    paged, marker = [], None
    while True:
        page = search(ram, limit=1, marker=marker)
        paged += [i.resource_share_invitation_id for i in page.resource_share_invitations]
        marker = page.page_info.next_marker if page.page_info else None
        if not marker:
            break
    assert paged == ids, paged

    # Accept and reject.
    accepted = ram.accept_resource_share_invitation(
        AcceptResourceShareInvitationRequest(resource_share_invitation_id=ids[0])
    )
    assert accepted.resource_share_invitation.status == "accepted"
    rejected = ram.reject_resource_share_invitation(
        RejectResourceShareInvitationRequest(resource_share_invitation_id=ids[1])
    )
    assert rejected.resource_share_invitation.status == "rejected"
    pending = search(ram, status="pending")
    assert [i.resource_share_invitation_id for i in pending.resource_share_invitations] == [ids[2]]

    # Final states and unknown ids.
    expect_error(
        400,
        "RAM.InvitationNotPending",
        ram.reject_resource_share_invitation,
        RejectResourceShareInvitationRequest(resource_share_invitation_id=ids[0]),
    )
    expect_error(
        404,
        "RAM.InvitationNotFound",
        ram.accept_resource_share_invitation,
        AcceptResourceShareInvitationRequest(resource_share_invitation_id="no-such-id"),
    )

    # A wrong SK: the gateway's APIGW.0301 surfaces as the SDK's exception.
    wrong = client(endpoint, args.ak, args.sk + "-wrong", args.domain_id)
    error = expect_error(
        401,
        "APIGW.0301",
        search,
        wrong,
    )
    assert "Incorrect IAM authentication information" in error.error_msg, error.error_msg
    expect_error(
        401,
        "APIGW.0301",
        wrong.accept_resource_share_invitation,
        AcceptResourceShareInvitationRequest(resource_share_invitation_id=ids[2]),
    )
    print("huawei ram emulator: all checks passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as error:
        print(f"check failed: {error!r}", file=sys.stderr)
        raise
