#!/usr/bin/env python3
"""Checks the local AWS RAM emulator with boto3, unchanged but for endpoint_url.

Usage: check_ram.py --endpoint http://127.0.0.1:PORT

Drives the resource-share invitation flow as three accounts (the emulator takes the
12-digit access key id as the account id): create a share with one outside account,
associate a second, read the invitations as the receiver (by ARN, by share, page by page),
list the pending resources, accept one, reject another, re-associate the rejected principal
(a new PENDING invitation beside the rejected one), advance the emulator clock 7 days (the
pending one expires), and the botocore error codes of: an unknown invitation ARN, a
malformed ARN, answering an accepted invitation, the sender answering, an expired
invitation, an invalid MaxResults. Exits non-zero on the first failed check.
"""

import argparse
import json
import sys
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

OWNER = "111111111111"
RECEIVER = "222222222222"
SECOND = "333333333333"
REGION = "eu-west-1"
SEVEN_DAYS = 7 * 24 * 3600


def client(endpoint, account):
    return boto3.client(
        "ram",
        endpoint_url=endpoint,
        region_name=REGION,
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
        assert error.response["Error"].get("Message"), "missing message"
        return error
    raise AssertionError(f"expected {code}, but the call succeeded")


def received(c, **kwargs):
    """Every invitation the caller received, page by page; returns (invitations, pages)."""
    invitations, pages, token = [], 0, None
    while True:
        args = dict(kwargs)
        if token:
            args["nextToken"] = token
        page = c.get_resource_share_invitations(**args)
        pages += 1
        invitations += page["resourceShareInvitations"]
        token = page.get("nextToken")
        if not token:
            return invitations, pages


def by_share(invitations, share_arn):
    return [i for i in invitations if i["resourceShareArn"] == share_arn]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    endpoint = parser.parse_args().endpoint
    owner, receiver, second = (client(endpoint, a) for a in (OWNER, RECEIVER, SECOND))

    created = owner.create_resource_share(
        name="subnets",
        principals=[RECEIVER],
        resourceArns=[f"arn:aws:ec2:{REGION}:{OWNER}:subnet/subnet-1"],
        clientToken="create-1",
    )
    share = created["resourceShare"]
    share_arn = share["resourceShareArn"]
    assert share_arn.startswith(f"arn:aws:ram:{REGION}:{OWNER}:resource-share/"), share_arn
    assert share["owningAccountId"] == OWNER and share["allowExternalPrincipals"] is True
    assert created["clientToken"] == "create-1"
    # The same token and parameters is the same request: the same share comes back.
    again = owner.create_resource_share(
        name="subnets",
        principals=[RECEIVER],
        resourceArns=[f"arn:aws:ec2:{REGION}:{OWNER}:subnet/subnet-1"],
        clientToken="create-1",
    )
    assert again["resourceShare"]["resourceShareArn"] == share_arn
    expect_error(
        "IdempotentParameterMismatchException",
        owner.create_resource_share,
        name="other",
        clientToken="create-1",
    )

    associated = owner.associate_resource_share(resourceShareArn=share_arn, principals=[SECOND])
    [association] = associated["resourceShareAssociations"]
    assert association["associatedEntity"] == SECOND, association
    assert association["associationType"] == "PRINCIPAL", association

    # The receiver sees its invitation; the sender sees none it sent.
    mine, _ = received(receiver)
    [invitation] = by_share(mine, share_arn)
    arn = invitation["resourceShareInvitationArn"]
    assert arn.startswith(f"arn:aws:ram:{REGION}:{OWNER}:resource-share-invitation/"), arn
    assert invitation["status"] == "PENDING", invitation
    assert invitation["senderAccountId"] == OWNER, invitation
    assert invitation["receiverAccountId"] == RECEIVER, invitation
    # botocore parsed the epoch-seconds timestamp into a datetime.
    assert invitation["invitationTimestamp"].year >= 2024, invitation
    sent, _ = received(owner)
    assert by_share(sent, share_arn) == [], sent
    one = receiver.get_resource_share_invitations(resourceShareInvitationArns=[arn])
    assert [i["resourceShareInvitationArn"] for i in one["resourceShareInvitations"]] == [arn]
    resources = receiver.list_pending_invitation_resources(resourceShareInvitationArn=arn)
    assert [r["arn"] for r in resources["resources"]] == [
        f"arn:aws:ec2:{REGION}:{OWNER}:subnet/subnet-1"
    ], resources

    # Accept one, reject the other.
    accepted = receiver.accept_resource_share_invitation(resourceShareInvitationArn=arn)
    assert accepted["resourceShareInvitation"]["status"] == "ACCEPTED", accepted
    assert accepted["clientToken"], "a generated client token is echoed"
    [second_invitation] = by_share(received(second)[0], share_arn)
    second_arn = second_invitation["resourceShareInvitationArn"]
    rejected = second.reject_resource_share_invitation(resourceShareInvitationArn=second_arn)
    assert rejected["resourceShareInvitation"]["status"] == "REJECTED", rejected

    # Re-associating the rejected principal sends a new PENDING invitation beside the old one.
    owner.associate_resource_share(resourceShareArn=share_arn, principals=[SECOND])
    statuses = {
        i["resourceShareInvitationArn"]: i["status"]
        for i in by_share(received(second)[0], share_arn)
    }
    assert statuses.pop(second_arn) == "REJECTED", statuses
    [(new_arn, new_status)] = statuses.items()
    assert new_status == "PENDING" and new_arn != second_arn, statuses

    # Paging: more shares for the receiver, read two at a time.
    for i in range(4):
        owner.create_resource_share(name=f"extra-{i}", principals=[RECEIVER])
    everything, pages = received(receiver, maxResults=2)
    assert len(everything) == 5 and pages == 3, (len(everything), pages)

    # Errors.
    unknown = f"arn:aws:ram:{REGION}:{OWNER}:resource-share-invitation/00000000-0000-0000-0000-000000000000"
    expect_error(
        "ResourceShareInvitationArnNotFoundException",
        receiver.get_resource_share_invitations,
        resourceShareInvitationArns=[unknown],
    )
    expect_error(
        "ResourceShareInvitationArnNotFoundException",
        receiver.accept_resource_share_invitation,
        resourceShareInvitationArn=unknown,
    )
    expect_error(
        "MalformedArnException",
        receiver.accept_resource_share_invitation,
        resourceShareInvitationArn="not-an-arn",
    )
    expect_error(
        "ResourceShareInvitationAlreadyAcceptedException",
        receiver.reject_resource_share_invitation,
        resourceShareInvitationArn=arn,
    )
    expect_error(
        "ResourceShareInvitationAlreadyRejectedException",
        second.accept_resource_share_invitation,
        resourceShareInvitationArn=second_arn,
    )
    expect_error(
        "OperationNotPermittedException",
        owner.accept_resource_share_invitation,
        resourceShareInvitationArn=new_arn,
    )
    # botocore refuses maxResults below the model's minimum itself; above it the service does.
    expect_error(
        "InvalidMaxResultsException",
        receiver.get_resource_share_invitations,
        maxResults=501,
    )
    expect_error(
        "InvalidNextTokenException",
        receiver.get_resource_share_invitations,
        nextToken="not-a-token",
    )

    # Seven days later the unanswered invitation has expired.
    request = urllib.request.Request(
        f"{endpoint}/_emulator/ram/clock",
        data=json.dumps({"advance_seconds": SEVEN_DAYS}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200, response.status
    [expired] = second.get_resource_share_invitations(resourceShareInvitationArns=[new_arn])[
        "resourceShareInvitations"
    ]
    assert expired["status"] == "EXPIRED", expired
    expect_error(
        "ResourceShareInvitationExpiredException",
        second.accept_resource_share_invitation,
        resourceShareInvitationArn=new_arn,
    )
    # Answered invitations do not expire.
    [still] = receiver.get_resource_share_invitations(resourceShareInvitationArns=[arn])[
        "resourceShareInvitations"
    ]
    assert still["status"] == "ACCEPTED", still
    print("check_ram.py: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
