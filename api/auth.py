"""Turning request credentials into a Principal: partner API keys and staff JWTs."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import PatriotError
from core.settings import Settings
from domain.access import (
    ANONYMOUS,
    DINAS_ROLES,
    KECAMATAN_ROLES,
    KELURAHAN_ROLES,
    Principal,
    Role,
)
from models import Partner, PartnerKey

API_KEY_HEADER = "x-api-key"
KEY_PREFIX = "ptk_"
# Writing last_used_at on every request would turn reads into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class InvalidCredentials(PatriotError):
    """Credentials were sent but are not valid: the request is refused as a whole."""


def hash_key(key: str) -> str:
    # Keys are 256 random bits, so a plain SHA-256 cannot be brute-forced.
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass
class _CachedKey:
    principal: Principal
    until: float


class Authenticator:
    def __init__(self, *, settings: Settings, session_factory: Callable[[], AsyncSession]) -> None:
        self._settings = settings
        self._session_factory = session_factory
        self._keys: dict[str, _CachedKey] = {}
        self._verification_key: str = (
            settings.token_secret
            if settings.jwt_algorithm.startswith("HS")
            else (settings.jwt_public_key or "")
        )

    async def from_headers(self, headers: Mapping[str, str]) -> Principal:
        api_key = headers.get(API_KEY_HEADER)
        authorization = headers.get("authorization")
        return await self._authenticate(api_key=api_key, authorization=authorization)

    async def from_connection_params(self, params: Mapping[str, Any]) -> Principal:
        authorization = params.get("authorization") or params.get("Authorization")
        return await self._authenticate(
            api_key=api_key_of(params),
            authorization=str(authorization) if authorization else None,
        )

    async def valid_key_digests(self, digests: Collection[str]) -> set[str]:
        """Those of `digests` whose key is still valid (not revoked, partner
        active), read from the database; the others leave the cache at once."""
        async with self._session_factory() as session:
            valid = set(
                await session.scalars(
                    select(PartnerKey.key_hash)
                    .join(Partner, Partner.id == PartnerKey.partner_id)
                    .where(
                        PartnerKey.key_hash.in_(list(digests)),
                        PartnerKey.revoked_at.is_(None),
                        Partner.is_active,
                    )
                )
            )
        for digest in set(digests) - valid:
            self._keys.pop(digest, None)
        return valid

    async def _authenticate(self, *, api_key: str | None, authorization: str | None) -> Principal:
        if api_key and authorization:
            raise InvalidCredentials("send either an API key or a bearer token, not both")
        if api_key:
            return await self._partner(api_key.strip())
        if authorization:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise InvalidCredentials("the Authorization header must be 'Bearer <token>'")
            return self.staff(token.strip())
        return ANONYMOUS

    async def _partner(self, key: str) -> Principal:
        digest = hash_key(key)
        cached = self._keys.get(digest)
        now = time.monotonic()
        if cached is not None and cached.until > now:
            return cached.principal
        async with self._session_factory() as session, session.begin():
            row = (
                await session.execute(
                    select(PartnerKey, Partner.code)
                    .join(Partner, Partner.id == PartnerKey.partner_id)
                    .where(
                        PartnerKey.key_hash == digest,
                        PartnerKey.revoked_at.is_(None),
                        Partner.is_active,
                    )
                )
            ).one_or_none()
            if row is None:
                self._keys.pop(digest, None)
                raise InvalidCredentials("unknown or revoked API key")
            partner_key, partner_code = row
            used = datetime.now(UTC)
            if (
                partner_key.last_used_at is None
                or used - partner_key.last_used_at > LAST_USED_RESOLUTION
            ):
                await session.execute(
                    update(PartnerKey)
                    .where(PartnerKey.id == partner_key.id)
                    .values(last_used_at=used)
                )
        principal = Principal(
            kind="partner", subject=f"partner:{partner_code}", partner_code=partner_code
        )
        self._keys[digest] = _CachedKey(principal, now + self._settings.partner_key_cache_s)
        return principal

    def staff(self, token: str) -> Principal:
        settings = self._settings
        try:
            claims = jwt.decode(
                token,
                self._verification_key,
                algorithms=[settings.jwt_algorithm],
                audience=settings.jwt_audience,
                issuer=settings.jwt_issuer,
                leeway=settings.jwt_leeway_s,
                options={"require": ["exp", "iat", "sub", "role"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise InvalidCredentials("the token has expired") from error
        except jwt.ImmatureSignatureError as error:
            raise InvalidCredentials("the token is not valid yet") from error
        except jwt.InvalidTokenError as error:
            raise InvalidCredentials(f"invalid token: {error}") from error
        return principal_from_claims(claims)


def api_key_of(params: Mapping[str, Any]) -> str | None:
    """The API key of a websocket's connection_init payload, if it sent one."""
    api_key = params.get("apiKey") or params.get("x-api-key")
    return str(api_key).strip() if api_key else None


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    try:
        role = Role(str(claims["role"]))
    except ValueError as error:
        raise InvalidCredentials(f"unknown role {claims['role']!r}") from error
    scope = {
        "kecamatan": claims.get("kecamatan"),
        "kelurahan": claims.get("kelurahan"),
        "dinas": claims.get("dinas"),
    }
    needed = (
        "kecamatan"
        if role in KECAMATAN_ROLES
        else "kelurahan"
        if role in KELURAHAN_ROLES
        else "dinas"
        if role in DINAS_ROLES
        else None
    )
    if needed and not scope[needed]:
        raise InvalidCredentials(f"a {role} token must carry a '{needed}' claim")
    return Principal(
        kind="staff",
        subject=f"staff:{claims['sub']}",
        role=role,
        kecamatan_code=str(scope["kecamatan"]) if needed == "kecamatan" else None,
        kelurahan_code=str(scope["kelurahan"]) if needed == "kelurahan" else None,
        dinas_code=str(scope["dinas"]) if needed == "dinas" else None,
        expires_at=float(claims["exp"]),
    )


def issue_token(
    *,
    settings: Settings,
    subject: str,
    role: Role,
    scope: Mapping[str, str] | None = None,
    lifetime: timedelta = timedelta(hours=8),
    private_key: str | None = None,
) -> str:
    """A staff token as an identity provider would issue it (for development and tests)."""
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": subject,
        "role": role.value,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        **(scope or {}),
    }
    key = settings.token_secret if settings.jwt_algorithm.startswith("HS") else private_key
    if key is None:
        raise ValueError(f"{settings.jwt_algorithm} tokens need the private key")
    return jwt.encode(claims, key, algorithm=settings.jwt_algorithm)
