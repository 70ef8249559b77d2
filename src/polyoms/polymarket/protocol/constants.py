"""Chain, contract and EIP-712 constants of CLOB V2 (protocol doc §1, §2.1, §3.1-3.3)."""

from __future__ import annotations

from typing import Final

POLYGON: Final = 137
AMOY: Final = 80002

ZERO_ADDRESS: Final = "0x0000000000000000000000000000000000000000"
BYTES32_ZERO: Final = "0x" + "00" * 32

# Exchange contracts per chain: (standard, neg-risk). The SDK's Amoy entry reuses the mainnet V2
# addresses, so both chains map to the same pair.
CTF_EXCHANGE_V2: Final = "0xE111180000d2663C0091e4f400237545B87B996B"
NEG_RISK_CTF_EXCHANGE_V2: Final = "0xe2222d279d744050d28e00520010520000310F59"
NEG_RISK_ADAPTER: Final = "0xd91E80cF2E7be2e162c6513ceD06f1dD0dA35296"
PUSD: Final = "0xC011a7E12a19f7B1f670d46F03B03f3342E82DFB"
# V1 exchanges: only to recognise (and refuse) V1-signed orders.
CTF_EXCHANGE_V1: Final = "0x4bFb41d5B3570DeFd03C39a9A4D8dE6Bd8B8982E"
NEG_RISK_CTF_EXCHANGE_V1: Final = "0xC5d563A36AE78145C45a50134d48A1215220f80a"

EXCHANGES: Final[dict[int, tuple[str, str]]] = {
    POLYGON: (CTF_EXCHANGE_V2, NEG_RISK_CTF_EXCHANGE_V2),
    AMOY: (CTF_EXCHANGE_V2, NEG_RISK_CTF_EXCHANGE_V2),
}

EXCHANGE_DOMAIN_NAME: Final = "Polymarket CTF Exchange"
EXCHANGE_DOMAIN_VERSION: Final = "2"

ORDER_TYPE_STRING: Final = (
    "Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,"
    "uint256 takerAmount,uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,"
    "bytes32 builder)"
)
DOMAIN_TYPE_STRING: Final = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
DOMAIN_NO_CONTRACT_TYPE_STRING: Final = "EIP712Domain(string name,string version,uint256 chainId)"
# ERC-7739 (Solady) nested typed-data signing for POLY_1271 deposit wallets.
TYPED_DATA_SIGN_TYPE_STRING: Final = (
    "TypedDataSign(Order contents,string name,string version,uint256 chainId,"
    "address verifyingContract,bytes32 salt)" + ORDER_TYPE_STRING
)
DEPOSIT_WALLET_DOMAIN_NAME: Final = "DepositWallet"
DEPOSIT_WALLET_DOMAIN_VERSION: Final = "1"

CLOB_AUTH_DOMAIN_NAME: Final = "ClobAuthDomain"
CLOB_AUTH_DOMAIN_VERSION: Final = "1"
CLOB_AUTH_TYPE_STRING: Final = "ClobAuth(address address,string timestamp,uint256 nonce,string message)"
CLOB_AUTH_MESSAGE: Final = "This message attests that I control the given wallet"

# GTD orders: the venue documents a one-minute security threshold (an effective lifetime of N
# seconds needs expiration = now + 60 + N). UNCONFIRMED whether the server enforces 60 s or more
# (third-party adapters use 180 s); one constant to change.
GTD_SECURITY_THRESHOLD_S: Final = 60

# Salts travel as JSON numbers, so they must stay exact in a double.
MAX_SALT: Final = 2**53 - 1
