"""Accounts, bearer tokens (stored hashed) and the store's staff permission."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from collabdesk.domain.errors import Forbidden, NotFound, Unauthenticated, ValidationFailed
from collabdesk.domain.records import Account
from collabdesk.domain.states import ACCOUNT_ROLES, MERCHANT_ROLES, Role
from collabdesk.domain.values import Actor

from .context import ServiceContext, new_id
from .messages import LANGUAGES
from .ports import UnitOfWork

BOOTSTRAP_ADMIN_ID = "acc_admin"


def new_token() -> str:
    return "cdk_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def password_hash(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt$16384$8$1${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n),
                               r=int(r), p=int(p))
    return hmac.compare_digest(candidate.hex(), digest)


def create_account(ctx: ServiceContext, actor: Actor | None, *, name: str, role: Role,
                   store_id: str | None = None, phone: str | None = None,
                   email: str | None = None, login: str | None = None,
                   password: str | None = None, token: str | None = None,
                   account_id: str | None = None, language: str = "zh"
                   ) -> tuple[Account, str]:
    """Returns the account and its bearer token, which is shown only this once.

    `actor` None is the operator at the command line.
    """
    if actor is not None and actor.role is not Role.ADMIN:
        raise Forbidden("only an admin creates accounts")
    if role not in ACCOUNT_ROLES:
        raise ValidationFailed(f"unknown role {role}")
    if not name.strip():
        raise ValidationFailed("name is required")
    if role in MERCHANT_ROLES and not store_id:
        raise ValidationFailed(f"store_id is required for {role}")
    if role not in MERCHANT_ROLES and store_id:
        raise ValidationFailed(f"store_id is only for merchant accounts, not {role}")
    if (login is None) != (password is None):
        raise ValidationFailed("login and password go together")
    if password is not None and len(password) < 8:
        raise ValidationFailed("password must be at least 8 characters")
    if language not in LANGUAGES:
        raise ValidationFailed(f"language must be one of {', '.join(LANGUAGES)}")
    token = token or new_token()

    def run(uow: UnitOfWork) -> Account:
        if store_id and uow.stores.get(store_id) is None:
            raise NotFound(f"store {store_id} not found")
        account = Account(account_id or new_id("acc"), name, role, store_id, phone, email,
                          login, True, ctx.clock.now(), language)
        uow.accounts.add(account, token_hash(token),
                         password_hash(password) if password is not None else None)
        return account

    return ctx.write(run), token


def authenticate(ctx: ServiceContext, token: str | None) -> Account:
    """The token's account: from the short-lived cache, else one read (then cached)."""
    if not token:
        raise Unauthenticated("missing bearer token")
    hashed = token_hash(token)
    if (cached := ctx.tokens.get(hashed)) is not None:
        return cached
    generation = ctx.tokens.generation
    account = ctx.read(lambda uow: uow.accounts.by_token_hash(hashed))
    if account is None:
        raise Unauthenticated("unknown bearer token")
    ctx.tokens.put(hashed, account, generation)
    return account


def cached_caller(ctx: ServiceContext, token: str | None) -> Account | None:
    """The token's account if the cache holds it (no I/O: safe on the event loop)."""
    return ctx.tokens.get(token_hash(token)) if token else None


def sign_in(ctx: ServiceContext, login: str, password: str) -> Account:
    found = ctx.read(lambda uow: uow.accounts.by_login(login))
    if found is None or found[1] is None or not password_matches(password, found[1]):
        raise Unauthenticated("wrong login or password")
    return found[0]


def ensure_admin(ctx: ServiceContext, configured_token: str | None) -> str | None:
    """The bootstrap admin. With a configured token, that token is the admin's; without
    one, a token is generated on first start and returned so it can be printed once."""
    def run(uow: UnitOfWork) -> str | None:
        existing = uow.accounts.get(BOOTSTRAP_ADMIN_ID)
        if configured_token:
            wanted = token_hash(configured_token)
            if existing is None:
                uow.accounts.add(Account(BOOTSTRAP_ADMIN_ID, "admin", Role.ADMIN, None, None,
                                         None, None, True, ctx.clock.now()), wanted, None)
            else:
                uow.accounts.set_token_hash(BOOTSTRAP_ADMIN_ID, wanted)
            return None
        if existing is not None:
            return None
        generated = new_token()
        uow.accounts.add(Account(BOOTSTRAP_ADMIN_ID, "admin", Role.ADMIN, None, None, None,
                                 None, True, ctx.clock.now()), token_hash(generated), None)
        return generated
    generated = ctx.write(run)
    ctx.tokens.clear()  # a replaced admin token stops working here at once
    return generated


_KEEP = object()


def update_contact(ctx: ServiceContext, actor: Actor, *, phone: object = _KEEP,
                   email: object = _KEEP, language: object = _KEEP) -> Account:
    """The caller's own phone number, email address and notification language (a field
    left out keeps its value; None clears a phone or an email)."""
    if language is not _KEEP and language not in LANGUAGES:
        raise ValidationFailed(f"language must be one of {', '.join(LANGUAGES)}")

    def run(uow: UnitOfWork) -> Account:
        account = uow.accounts.get(actor.id)
        if account is None:
            raise NotFound(f"account {actor.id} not found")
        new_phone = account.phone if phone is _KEEP else phone
        new_email = account.email if email is _KEEP else email
        new_language = account.language if language is _KEEP else language
        assert new_phone is None or isinstance(new_phone, str)
        assert new_email is None or isinstance(new_email, str)
        assert isinstance(new_language, str)
        uow.accounts.set_contact(actor.id, new_phone, new_email, new_language)
        updated = uow.accounts.get(actor.id)
        assert updated is not None
        return updated
    updated = ctx.write(run)
    ctx.tokens.clear()
    return updated


def set_staff_permission(ctx: ServiceContext, actor: Actor, store_id: str, account_id: str,
                         work_orders: bool) -> Account:
    def run(uow: UnitOfWork) -> Account:
        if actor.role in MERCHANT_ROLES and actor.store_id != store_id:
            raise NotFound(f"store {store_id} not found")
        if uow.stores.get(store_id) is None:
            raise NotFound(f"store {store_id} not found")
        if actor.role is not Role.MERCHANT_OWNER:
            raise Forbidden("only the store owner grants the work-order permission")
        account = uow.accounts.get(account_id)
        if account is None or account.store_id != store_id:
            raise NotFound(f"account {account_id} is not staff of store {store_id}")
        if account.role is not Role.MERCHANT_AGENT:
            raise ValidationFailed("the permission is granted to store sub-accounts "
                                   "(merchant_agent); the owner always holds it")
        uow.accounts.set_handles_work_orders(account_id, work_orders)
        updated = uow.accounts.get(account_id)
        assert updated is not None
        return updated
    updated = ctx.write(run)
    ctx.tokens.clear()  # this process stops using the old permission at once
    return updated
