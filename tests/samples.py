"""What providers send, as they send it: bodies and signatures from their documentation, and
the hostile XML every parser must refuse."""

import hashlib
import hmac

ALIPAY_NOTIFY = (
    "gmt_create=2026-11-28+10%3A03%3A21&charset=utf-8&seller_email=shop%40example.com"
    "&subject=%E6%B5%8B%E8%AF%95%E8%AE%A2%E5%8D%95&sign=ErCRRVmW%2FvXu1XO76k%2BUr4gYKC5%2FWgZGSo88y"
    "%2BdYEm%2Bwq2v%3D%3D&buyer_id=2088102175953034&invoice_amount=88.88&notify_id=2026112800222"
    "&fund_bill_list=%5B%7B%22amount%22%3A%2288.88%22%2C%22fundChannel%22%3A%22ALIPAYACCOUNT%22%7D%5D"
    "&notify_type=trade_status_sync&trade_status=TRADE_SUCCESS&receipt_amount=88.88"
    "&app_id=2016091700532697&buyer_pay_amount=88.88&sign_type=RSA2&seller_id=2088102175107499"
    "&gmt_payment=2026-11-28+10%3A03%3A22&notify_time=2026-11-28+10%3A03%3A22&version=1.0"
    "&out_trade_no=20261128100307&total_amount=88.88&trade_no=2026112822001453031000151111"
    "&auth_app_id=2016091700532697&buyer_logon_id=jfj***%40sandbox.com&point_amount=0.00"
)


WECHAT_NOTIFY = b"""<xml>
<appid><![CDATA[wx2421b1c4370ec43b]]></appid>
<attach><![CDATA[payment test]]></attach>
<bank_type><![CDATA[CFT]]></bank_type>
<fee_type><![CDATA[CNY]]></fee_type>
<is_subscribe><![CDATA[Y]]></is_subscribe>
<mch_id><![CDATA[10000100]]></mch_id>
<nonce_str><![CDATA[5d2b6c2a8db53831f7eda20af46e531c]]></nonce_str>
<openid><![CDATA[oUpF8uMEb4qRXf22hE3X68TekukE]]></openid>
<out_trade_no><![CDATA[1409811653]]></out_trade_no>
<result_code><![CDATA[SUCCESS]]></result_code>
<return_code><![CDATA[SUCCESS]]></return_code>
<sign><![CDATA[B552ED6B279343CB493C5DD0D78AB241]]></sign>
<time_end><![CDATA[20261128131540]]></time_end>
<total_fee>1</total_fee>
<coupon_fee><![CDATA[10]]></coupon_fee>
<coupon_count><![CDATA[1]]></coupon_count>
<coupon_type><![CDATA[CASH]]></coupon_type>
<coupon_id><![CDATA[10000]]></coupon_id>
<trade_type><![CDATA[JSAPI]]></trade_type>
<transaction_id><![CDATA[1004400740201409030005092168]]></transaction_id>
</xml>"""


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>"""


EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<foo>&xxe;</foo>"""


GH_SECRET = "It's a Secret to Everybody"


GH_BODY = b"Hello, World!"


GH_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def stripe_header(secret: str, timestamp: int, body: bytes) -> str:
    """Stripe's documented scheme: v1 = HMAC-SHA256(secret, "{t}.{body}") in hex."""
    v1 = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return (
        f"t={timestamp},v1={v1},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
    )
