"""The published test vectors of the protocol reference (/work/shared/docs/polymarket-clob-v2.md).

§2.1 ClobAuth (L1), §2.3 HMAC (L2), §3.1/3.2 typehashes and domain separators, §3.4 order
signing (EOA on four domains, POLY_1271), §3.6/§3.7 amounts, §3.9 the realistic POST /order.
"""

from __future__ import annotations

import pytest
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from polyoms.core.enums import OrderType, Side, SignatureType
from polyoms.polymarket.protocol import constants
from polyoms.polymarket.protocol.auth import ApiCreds, hmac_signature, l1_headers, l1_signature, l2_headers
from polyoms.polymarket.protocol.eip712 import (
    CLOB_AUTH_TYPEHASH,
    DOMAIN_NO_CONTRACT_TYPEHASH,
    DOMAIN_TYPEHASH,
    ORDER_TYPEHASH,
    POLY_1271_SIGNATURE_LENGTH,
    clob_auth_digest,
    exchange_domain_separator,
    order_struct_hash,
    poly_1271_digest,
    typed_digest,
    wrap_poly_1271,
)
from polyoms.polymarket.protocol.keys import Signer, address_bytes, recover_address
from polyoms.polymarket.protocol.order import OrderBuilder, SignedOrder, recover_order_signer
from polyoms.polymarket.protocol.wire import post_order_body

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ZERO32 = "0x" + "00" * 32
EXCHANGE_V3 = "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa"
SECRET = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
OWNER = "00000000-0000-0000-0000-000000000001"
TOKEN_39 = "71321045679252212594626385532706912750332728571942532289631379312455583992563"


def h(hex_str: str) -> bytes:
    return bytes.fromhex(hex_str.removeprefix("0x"))


# --- §2.1 / §3.1 / §3.2: typehashes and domain separators -------------------------------------


def test_typehashes() -> None:
    assert h("0x8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f") == DOMAIN_TYPEHASH
    assert h("0xc2f8787176b8ac6bf7215b4adcc1e069bf4ab82d9ab1df05a57a91d425935b6e") == DOMAIN_NO_CONTRACT_TYPEHASH
    assert h("0x52578c5c725a28a84fedc8c22aa47947822942f35b4dc350db028e45320e035c") == CLOB_AUTH_TYPEHASH
    assert h("0xbb86318a2138f5fa8ae32fbe8e659f8fcf13cc6ae4014a707893055433818589") == ORDER_TYPEHASH
    # and they are what an independent keccak gives for the type strings
    assert keccak(text=constants.ORDER_TYPE_STRING) == ORDER_TYPEHASH
    assert keccak(text=constants.CLOB_AUTH_TYPE_STRING) == CLOB_AUTH_TYPEHASH


@pytest.mark.parametrize(
    ("chain_id", "contract", "expected"),
    [
        (137, constants.CTF_EXCHANGE_V2, "0x3264e159346253e26a64e00b69032db0e7d32f94628de3e6eecb50304d7af3d2"),
        (137, constants.NEG_RISK_CTF_EXCHANGE_V2, "0x9b858f53327b0bd13af8ec14cfb35234fb9eb7b0504d1a4e61f433840d30e81a"),
        (80002, constants.CTF_EXCHANGE_V2, "0xa440cbd865bc0c6243d7a8df9a8bf48a8827b0a4abbb61c30e96d305423af148"),
    ],
)
def test_exchange_domain_separators(chain_id: int, contract: str, expected: str) -> None:
    assert exchange_domain_separator(chain_id, contract) == h(expected)
    # lower-case address spelling does not change the separator
    assert exchange_domain_separator(chain_id, contract.lower()) == h(expected)


# --- §3.4: order signing -------------------------------------------------------------------------

FIXTURE = dict(
    salt=479249096354,
    token_id=1234,
    maker_amount=100_000_000,
    taker_amount=50_000_000,
    side=0,
    timestamp_ms=1_710_000_000_000,
)
STRUCT_HASH = "0xf6bf4212bfca4d6679afc2c54a54d814a91a6c7905de5ed193fe44f329c239f0"


def fixture_struct_hash(maker: str, signer: str, signature_type: int) -> bytes:
    return order_struct_hash(
        FIXTURE["salt"],
        address_bytes(maker),
        address_bytes(signer),
        FIXTURE["token_id"],
        FIXTURE["maker_amount"],
        FIXTURE["taker_amount"],
        FIXTURE["side"],
        signature_type,
        FIXTURE["timestamp_ms"],
        bytes(32),
        bytes(32),
    )


EOA_VECTORS = [
    pytest.param(
        exchange_domain_separator(137, constants.CTF_EXCHANGE_V2),
        "0x10124949f84e9f7438c88d02bfd546ceb27ed6eb1fdb0175137af535b6e2513d",
        "0x42c7b4857d51e344045fcfde17b37cf1290d784471ffe618c22aa56ea5ddcf0009015b87ffb299813f5597e86d4ad56f40d634558d915edb719e6fc71dbc0d891c",
        id="137-ctf-exchange-v2",
    ),
    pytest.param(
        exchange_domain_separator(137, constants.NEG_RISK_CTF_EXCHANGE_V2),
        "0x9c2976657c4b229cc8e467a32ce9e3281ef40a70aee31cdc4619ebf51e4a7274",
        "0x79d82a92bd020329c6b9afad40b742c8cfaebdd992219b57e4282b6cfd53a66f2c97471d3297fa001f3eac2ead5f709c6e266893f19cef37633511420542a63b1b",
        id="137-neg-risk-exchange-v2",
    ),
    pytest.param(
        exchange_domain_separator(80002, constants.CTF_EXCHANGE_V2),
        "0x962c97b18bea292cc94b9479272aa74fb59a905e84a621a40eb339131e9fb6ba",
        "0x518472f1b081f6bd713d638bb11d1bf0720ed577e93c52eb00ec9f5f325f7d510c65cbfdfe9130de2602185f4a500863d777d8b838cb28abc75ecc1b5330315d1c",
        id="80002-ctf-exchange-v2",
    ),
    pytest.param(
        exchange_domain_separator(137, EXCHANGE_V3, version="3"),
        "0x0d34966f6a42e3b8bec3d0d0dcca74d762695a3bd4cdf1d6a1fc2201bf9daa87",
        "0x22a4e68028c7984ff9b19217dee3a8491614e97a84ca42d53fe73e7a50745fd66706b966fa16ce911a3217958a5471343c47f2fd56ea9392522a4c1c156eac701c",
        id="137-exchange-v3-version-3",
    ),
]


def test_eoa_struct_hash() -> None:
    assert fixture_struct_hash(ADDRESS, ADDRESS, 0) == h(STRUCT_HASH)


@pytest.mark.parametrize(("domain", "order_hash", "signature"), EOA_VECTORS)
def test_eoa_order_vectors(domain: bytes, order_hash: str, signature: str) -> None:
    digest = typed_digest(domain, fixture_struct_hash(ADDRESS, ADDRESS, 0))
    assert "0x" + digest.hex() == order_hash
    signer = Signer(KEY)
    assert "0x" + signer.sign_digest(digest).hex() == signature
    assert recover_address(digest, h(signature)) == ADDRESS


def test_eoa_vector_typed_data_json_hashes_the_same_with_eth_account() -> None:
    """The full typed-data object printed in §3.4 (first EOA row), hashed by an independent encoder."""
    typed = {
        "primaryType": "Order",
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Order": [
                {"name": "salt", "type": "uint256"},
                {"name": "maker", "type": "address"},
                {"name": "signer", "type": "address"},
                {"name": "tokenId", "type": "uint256"},
                {"name": "makerAmount", "type": "uint256"},
                {"name": "takerAmount", "type": "uint256"},
                {"name": "side", "type": "uint8"},
                {"name": "signatureType", "type": "uint8"},
                {"name": "timestamp", "type": "uint256"},
                {"name": "metadata", "type": "bytes32"},
                {"name": "builder", "type": "bytes32"},
            ],
        },
        "domain": {
            "name": "Polymarket CTF Exchange",
            "version": "2",
            "chainId": 137,
            "verifyingContract": "0xE111180000d2663C0091e4f400237545B87B996B",
        },
        "message": {
            "salt": 479249096354,
            "maker": ADDRESS,
            "signer": ADDRESS,
            "tokenId": 1234,
            "makerAmount": 100000000,
            "takerAmount": 50000000,
            "side": 0,
            "signatureType": 0,
            "timestamp": 1710000000000,
            "metadata": ZERO32,
            "builder": ZERO32,
        },
    }
    msg = encode_typed_data(full_message=typed)
    eth_digest = keccak(b"\x19" + msg.version + msg.header + msg.body)
    assert eth_digest == h("0x10124949f84e9f7438c88d02bfd546ceb27ed6eb1fdb0175137af535b6e2513d")
    assert msg.header == exchange_domain_separator(137, constants.CTF_EXCHANGE_V2)
    assert msg.body == h(STRUCT_HASH)


POLY_1271_SIGNATURE = (
    "0xa3a093c83b6c20c83355c16ce94c92e6e9fcbdeb840618cc74f6c57a42ad145b2b98db73d2c73cbf1f2b6af288566ae81960ddbc3a13921027358a8bff3be6ff1c"
    "a440cbd865bc0c6243d7a8df9a8bf48a8827b0a4abbb61c30e96d305423af148"
    "d23d42d3ad94e65d78258cecaf8dcbaddac0f73dc085040f2c12bb595dd83804"
    "4f726465722875696e743235362073616c742c61646472657373206d616b65722c61646472657373207369676e65722c75696e7432353620746f6b656e49642c75696e74323536206d616b6572416d6f756e742c75696e743235362074616b6572416d6f756e742c75696e743820736964652c75696e7438207369676e6174757265547970652c75696e743235362074696d657374616d702c62797465733332206d657461646174612c62797465733332206275696c64657229"
    "00ba"
)
WALLET = "0x1111111111111111111111111111111111111111"


def test_poly_1271_official_vector_exact_signature() -> None:
    domain = exchange_domain_separator(80002, constants.CTF_EXCHANGE_V2)
    contents = fixture_struct_hash(WALLET, WALLET, 3)
    assert contents == h("0xd23d42d3ad94e65d78258cecaf8dcbaddac0f73dc085040f2c12bb595dd83804")
    inner = Signer(KEY).sign_digest(poly_1271_digest(domain, contents, 80002, address_bytes(WALLET)))
    signature = wrap_poly_1271(inner, domain, contents)
    assert "0x" + signature.hex() == POLY_1271_SIGNATURE
    assert len(signature) == POLY_1271_SIGNATURE_LENGTH == 317
    assert signature.endswith(bytes.fromhex("00ba"))


def test_poly_1271_official_vector_recovers_to_the_wallet_owner() -> None:
    order = SignedOrder(
        salt=FIXTURE["salt"],
        maker=WALLET,
        signer=WALLET,
        token_id=1234,
        maker_amount=100_000_000,
        taker_amount=50_000_000,
        side=Side.BUY,
        signature_type=SignatureType.POLY_1271,
        timestamp_ms=FIXTURE["timestamp_ms"],
        metadata=ZERO32,
        builder=ZERO32,
        expiration=0,
        signature=POLY_1271_SIGNATURE,
        order_id="",
        chain_id=80002,
    )
    assert recover_order_signer(order) == ADDRESS


# --- §3.9: the realistic POST /order -----------------------------------------------------------

BUY_ORDER_ID = "0xf8d9b24b1248faf2b4046f13c06cfe8b6f1e2cb737867b90bb44122ebfee5cf6"
BUY_SIGNATURE = (
    "0xa05f9d5885fc6aa6ac747ffca2ad3f5bc7ce86022823f4c5f78c33c50040c724"
    "345a0d945be838dbac32322185b61c09e3b897cd10516c6beb0ed4748a38d5e61c"
)
BUY_BODY = (
    '{"order":{"salt":123456789,"maker":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",'
    '"signer":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",'
    '"tokenId":"71321045679252212594626385532706912750332728571942532289631379312455583992563",'
    '"makerAmount":"11782400","takerAmount":"21040000","side":"BUY","expiration":"0","signatureType":0,'
    '"timestamp":"1777000000000",'
    '"metadata":"0x0000000000000000000000000000000000000000000000000000000000000000",'
    '"builder":"0x0000000000000000000000000000000000000000000000000000000000000000",'
    '"signature":"' + BUY_SIGNATURE + '"},'
    '"owner":"00000000-0000-0000-0000-000000000001","orderType":"GTC","deferExec":false,"postOnly":false}'
).encode()
SELL_ORDER_ID = "0xb3a241313a8ded811a60fdedfe8922798a033784afc85db82975a708d2c1f864"
SELL_SIGNATURE = (
    "0x29934e5042f1b8485bb83bc1674ec2c25a9e88ca5ddbae5f16d3363a6ff8ebe5"
    "648ac4cb6015553c57bd769ffa785dd9dfc68bfa7ff6f8f510eb9fef70839cbd1c"
)


def vector_builder() -> OrderBuilder:
    return OrderBuilder(Signer(KEY), chain_id=137)


def test_realistic_buy_order_id_signature_and_body() -> None:
    order = vector_builder().limit(
        TOKEN_39, "BUY", "0.56", "21.04", tick="0.01", salt=123456789, timestamp_ms=1_777_000_000_000
    )
    assert (order.maker_amount, order.taker_amount) == (11_782_400, 21_040_000)
    assert order.order_id == BUY_ORDER_ID
    assert order.signature == BUY_SIGNATURE
    assert post_order_body(order, OWNER) == BUY_BODY


def test_realistic_buy_body_hmac() -> None:
    assert (
        hmac_signature(SECRET, 1777000000, "POST", "/order", BUY_BODY) == "V-UP7f6zs8KY-o3A97N7vyiFV3fxLzQDg49kmaG8lUI="
    )
    creds = ApiCreds(OWNER, SECRET, "passphrase")
    headers = l2_headers(ADDRESS, creds, 1777000000, "POST", "/order", BUY_BODY)
    assert headers["POLY_SIGNATURE"] == "V-UP7f6zs8KY-o3A97N7vyiFV3fxLzQDg49kmaG8lUI="
    assert headers["POLY_TIMESTAMP"] == "1777000000"


@pytest.mark.parametrize("expiration", [1777000600, 0])
def test_realistic_sell_vector_gtd_and_expiration_is_unsigned(expiration: int) -> None:
    order_type = OrderType.GTD if expiration else OrderType.GTC
    order = vector_builder().limit(
        TOKEN_39,
        "SELL",
        "0.56",
        "21.04",
        tick="0.01",
        order_type=order_type,
        expiration=expiration,
        salt=123456789,
        timestamp_ms=1_777_000_000_000,
    )
    assert (order.maker_amount, order.taker_amount) == (21_040_000, 11_782_400)
    assert order.order_id == SELL_ORDER_ID
    assert order.signature == SELL_SIGNATURE
    body = post_order_body(order, OWNER)
    assert f'"expiration":"{expiration}"'.encode() in body
    assert f'"orderType":"{order_type.value}"'.encode() in body


# --- §2.1 L1 and §2.3 L2 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chain_id", "timestamp", "nonce", "signature"),
    [
        (
            80002,
            10000000,
            23,
            "0xf62319a987514da40e57e2f4d7529f7bac38f0355bd88bb5adbb3768d80de6c1682518e0af677d5260366425f4361e7b70c25ae232aff0ab2331e2b164a1aedc1b",
        ),
        (
            137,
            10000000,
            23,
            "0x1a7118db6100dfd8efd102be36f472b59475dcac56eb4c9a2a94748d3655ba7c3c89deb8c19ee79eceb0a531122fbfbe88ed118034f9d8212e2b725e7b296b9d1c",
        ),
        (
            137,
            1700000000,
            0,
            "0x659ed4b28ae28e0f038fdf0023c00863c9559caacb9ebc83f44eea87059a099a36f1e1dee110e7faa1c4f65d17489b2da1333ebef78bbe2116d81207b975052d1c",
        ),
    ],
)
def test_l1_clob_auth_vectors(chain_id: int, timestamp: int, nonce: int, signature: str) -> None:
    signer = Signer(KEY)
    assert signer.address == ADDRESS
    assert l1_signature(signer, chain_id, timestamp, nonce) == signature
    assert l1_headers(signer, chain_id, timestamp, nonce) == {
        "POLY_ADDRESS": ADDRESS,
        "POLY_SIGNATURE": signature,
        "POLY_TIMESTAMP": str(timestamp),
        "POLY_NONCE": str(nonce),
    }
    assert recover_address(clob_auth_digest(chain_id, ADDRESS, str(timestamp), nonce), h(signature)) == ADDRESS


@pytest.mark.parametrize(
    ("timestamp", "method", "path", "body", "signature"),
    [
        ("1000000", "test-sign", "/orders", '{"hash": "0x123"}', "ZwAdJKvoYRlEKDkNMwd5BuwNNtg93kNaR_oU2HrfVvc="),
        ("1700000000", "GET", "/data/orders", None, "m6lGS9WyES7JjpAYNd7zIdW5bfHxAAI_pIa1St9vLO4="),
        ("1777000000", "POST", "/order", BUY_BODY.decode(), "V-UP7f6zs8KY-o3A97N7vyiFV3fxLzQDg49kmaG8lUI="),
    ],
)
def test_l2_hmac_vectors(timestamp: str, method: str, path: str, body: str | None, signature: str) -> None:
    assert hmac_signature(SECRET, timestamp, method, path, body) == signature
    assert hmac_signature(SECRET, int(timestamp), method, path, body.encode() if body else None) == signature


# --- §3.6 / §3.7: amounts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "size", "price", "tick", "maker", "taker"),
    [
        ("BUY", "21.04", "0.5", "0.1", 10_520_000, 21_040_000),
        ("BUY", "21.04", "0.56", "0.01", 11_782_400, 21_040_000),
        ("BUY", "21.04", "0.056", "0.001", 1_178_240, 21_040_000),
        ("BUY", "21.04", "0.0056", "0.0001", 117_824, 21_040_000),
        ("SELL", "21.04", "0.56", "0.01", 21_040_000, 11_782_400),
    ],
)
def test_limit_amount_vectors(side: str, size: str, price: str, tick: str, maker: int, taker: int) -> None:
    order = vector_builder().limit(1234, side, price, size, tick=tick, salt=1, timestamp_ms=1_777_000_000_000)
    assert (order.maker_amount, order.taker_amount) == (maker, taker)


@pytest.mark.parametrize(
    ("side", "amount", "price", "tick", "maker", "taker"),
    [
        ("BUY", "100", "0.56", "0.01", 100_000_000, 178_571_400),
        ("BUY", "100", "0.056", "0.001", 100_000_000, 1_785_714_280),
        ("BUY", "100", "0.0056", "0.0001", 100_000_000, 17_857_142_857),
        ("SELL", "100", "0.56", "0.01", 100_000_000, 56_000_000),
    ],
)
def test_market_amount_vectors(side: str, amount: str, price: str, tick: str, maker: int, taker: int) -> None:
    order = vector_builder().market(1234, side, amount, price, tick=tick, salt=1, timestamp_ms=1_777_000_000_000)
    assert (order.maker_amount, order.taker_amount) == (maker, taker)
    assert order.order_type is OrderType.FOK
