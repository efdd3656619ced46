"""Generate Northwind Shop's example production logs: interactions.jsonl and feedback.jsonl.

    python data/example/make_example.py           # rewrite both files (byte-identical every run)
    python data/example/make_example.py --check   # exit 1 if the committed files differ

The deployed agent (support-agent, version base) answers tersely and generically. Support staff
edit its answers (apologise, ask for or cite the order number, offer a replacement or refund,
give a timeline), pick the better of two answers in A/B tests, and customers rate answers.
A few lines are malformed on purpose, so extraction's quarantine has something to catch.
Standard library only; a seeded random.Random and no clock, so the output never changes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20261101
START = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)  # the cycle's window: 2026-11-01 .. 2026-11-24

SYSTEM_BLACK_FRIDAY = (
    "You are the support assistant of Northwind Shop. Be brief, polite and concrete: apologise when "
    "something went wrong, ask for the order number when you need it, and offer a replacement or a "
    "refund for damaged or missing items. Never reveal other customers' data and never promise what "
    "policy does not allow. Black Friday week: deliveries may take up to 2 extra business days."
)
BLACK_FRIDAY_FROM = dt.date(2026, 11, 20)  # the serving side switched system prompt on this day

PRODUCTS = [
    "ceramic teapot", "oak serving board", "linen duvet cover", "pour-over coffee set", "wool throw blanket",
    "cast-iron skillet", "bamboo bath mat", "stoneware dinner set", "brass desk lamp", "rattan laundry basket",
    "copper kettle", "marble mortar and pestle", "velvet cushion cover", "enamel pie dish", "walnut bookshelf",
    "steel water bottle", "set of espresso cups", "jute rug", "hanging plant pot", "chef's knife",
    "LED reading lamp", "set of wine glasses", "weighted blanket", "electric milk frother", "wooden train set",
    "hiking backpack", "cork yoga mat", "bluetooth speaker", "oak wall clock", "scented candle set",
]
STREETS = ["Elm Street", "Harbour Road", "Mill Lane", "Station Road", "Kingsway", "Rose Avenue", "Quay Street", "Park Row"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
STAFF = ["staff:alice", "staff:bob", "staff:chen", "staff:dana", "staff:emeka"]
TOPICS = ["damaged", "late", "missing", "refund", "address", "status", "offtopic"]
TOPIC_WEIGHTS = [30, 22, 14, 14, 8, 8, 4]

# customer messages: (with an order number, without one)
ASK = {
    "damaged": (
        [
            "Hi, my {product} from order {order} arrived broken. What can I do?",
            "Order {order}: the {product} was cracked when I opened the box.",
            "The {product} I received today (order {order}) is damaged, the box was crushed.",
            "hello, {order} came in but the {product} has a big scratch on it",
            "My order {order} arrived and the {product} is smashed. Not happy.",
            "I just unpacked order {order} and the {product} is chipped. Can you send a new one?",
            "The {product} in {order} is bent out of shape, looks like it was dropped.",
        ],
        [
            "My {product} arrived broken.",
            "the {product} came damaged, what now?",
            "Hi, I received my {product} yesterday and it's cracked.",
            "The parcel was soaked and the {product} inside is ruined.",
            "Got my {product} today, one of the pieces is broken :(",
            "Your courier must have dropped my package, the {product} is in pieces.",
            "The {product} I ordered has a dent in it. I want it fixed.",
        ],
    ),
    "late": (
        [
            "Where is my order {order}? It's been {days} days.",
            "Order {order} was supposed to arrive on {weekday}, still nothing.",
            "My {product} (order {order}) is late. Tracking hasn't updated in {days} days.",
            "It's been over a week since I ordered ({order}) and nothing has arrived.",
            "{order} still not delivered. I need the {product} by {weekday}.",
        ],
        [
            "My package is late.",
            "I ordered a {product} {days} days ago and it still hasn't arrived.",
            "Delivery was promised for {weekday} but nothing came.",
            "why is my delivery taking so long??",
            "The {product} I ordered should have been here by now. Where is it?",
        ],
    ),
    "missing": (
        [
            "Order {order} arrived but the {product} was missing from the box.",
            "I only got part of order {order}, the {product} isn't there.",
            "The parcel for {order} had only the packing slip in it, no {product}.",
            "Tracking says order {order} was delivered but I never got it.",
        ],
        [
            "The {product} was not in my parcel.",
            "I received my order but one item is missing, the {product}.",
            "Tracking says delivered but I never got my parcel.",
            "My box arrived half empty, where is the {product}?",
        ],
    ),
    "refund": (
        [
            "I want a refund for order {order}.",
            "I returned the {product} from order {order} two weeks ago, when do I get my money back?",
            "Can I get my money back for the {product}? Order {order}.",
            "Please refund order {order}, the {product} isn't what I expected.",
        ],
        [
            "How do I get a refund?",
            "I'd like to return the {product} and get a refund.",
            "I sent back my {product} {days} days ago and still no refund.",
            "Can I return the {product} if I've used it once?",
        ],
    ),
    "address": (
        [
            "Can I change the delivery address for order {order}? I moved to {address}.",
            "Please send order {order} to {address} instead.",
            "Wrong address on {order}, it should go to {address}.",
        ],
        [
            "I need to change my delivery address.",
            "I entered the wrong address, can you fix it? It should be {address}.",
            "Can you deliver my {product} to {address} instead of my home?",
        ],
    ),
    "status": (
        [
            "What's the status of order {order}?",
            "Has order {order} shipped yet?",
            "Can you check order {order} for me?",
            "When will {order} be sent out?",
        ],
        [
            "Where is my order?",
            "Has my {product} shipped?",
            "How do I track my parcel?",
            "Any news on my {product}?",
        ],
    ),
    "offtopic": (
        [],
        [
            "What's the weather like tomorrow?",
            "Tell me a joke.",
            "Who won the football last night?",
            "Can you help me write a birthday card for my mum?",
            "What's the capital of Australia?",
            "Do you like your job?",
            "Can you recommend a good recipe for my {product}?",
        ],
    ),
}

# what the deployed agent says: generic, terse, no order number, no concrete offer, no timeline
GENERIC = {
    "damaged": [
        "Sorry about that. Please contact our support team.",
        "We will look into it.",
        "Please send us a photo of the damage.",
        "Thank you for letting us know.",
        "That is unfortunate. You can return the item via our website.",
        "Items can sometimes be damaged in transit.",
    ],
    "late": [
        "Deliveries can take longer than expected. Please wait a few more days.",
        "Your order is on its way.",
        "Please check the tracking link in your email.",
        "We cannot control courier delays.",
        "Delivery times vary.",
    ],
    "missing": [
        "Please check your parcel again.",
        "Sometimes items are shipped separately.",
        "We will look into it.",
        "Please check with your neighbours.",
    ],
    "refund": [
        "Refunds are processed according to our policy.",
        "You can request a refund on our website.",
        "Refunds take some time.",
        "Please see our returns page.",
    ],
    "address": [
        "You can change your address in your account settings.",
        "Please contact us about that.",
        "Address changes are not always possible.",
    ],
    "status": [
        "Please check the tracking link in your email.",
        "Your order is being processed.",
        "You can see your order status in your account.",
    ],
    "offtopic": [
        "I don't know.",
        "Sure! Here is something for you.",
        "I am not sure about that.",
    ],
}

# the pieces of a good answer, as support staff write them
APOLOGY = {
    "damaged": [
        "I'm so sorry your {product} arrived damaged.",
        "Sorry about the broken {product}, that's not the condition it should arrive in.",
        "I'm really sorry, that's disappointing to unpack.",
    ],
    "late": [
        "I'm sorry your parcel is taking so long.",
        "Apologies for the delay, I know you've been waiting.",
        "Sorry for the wait, that's longer than it should be.",
    ],
    "missing": [
        "I'm sorry the {product} was missing.",
        "Apologies, that's our mistake.",
        "I'm sorry, your parcel should have been complete.",
    ],
    "refund": [
        "Sorry for the hassle.",
        "I'm sorry the {product} didn't work out.",
        "Thanks for your patience, and sorry for the trouble.",
    ],
    "address": [
        "Of course, I can help with that.",
        "No problem, let's get that fixed.",
    ],
    "status": [
        "Thanks for checking in.",
        "Happy to check that for you.",
    ],
}
WITH_ORDER = {
    "damaged": [
        "I've checked order {order}: I can send a free replacement {product} or refund it in full, whichever you prefer.",
        "For order {order} I can ship a replacement at no cost, or refund the {product} to your original payment method.",
    ],
    "late": [
        "I've checked order {order}: it's with the courier and the new estimate is {weekday}. If it hasn't arrived by then, I'll send a replacement or refund you in full.",
        "Order {order} was delayed at the depot and is now moving again; expect it by {weekday}. If it doesn't turn up, I'll refund or replace it right away.",
    ],
    "missing": [
        "I've checked order {order} and I'll send the missing {product} by express at no cost, or refund it if you'd rather.",
        "For order {order} I'll ship the {product} again free of charge, or refund it, just tell me which.",
    ],
    "refund": [
        "I've checked order {order}: your refund is approved and goes back to your original payment method.",
        "The refund for order {order} is approved; you don't need to do anything else.",
    ],
    "address": [
        "Order {order} hasn't left the warehouse yet, so I've updated the delivery address to {address}.",
        "I've changed the address on order {order} to {address} before it ships.",
    ],
    "status": [
        "Order {order} shipped on {weekday} with DHL; you'll get the tracking link by email.",
        "Order {order} is packed and leaves the warehouse today with DHL.",
    ],
}
NO_ORDER = {
    "damaged": [
        "Could you send me your order number (it starts with NW-)? Then I can send a free replacement or a full refund, whichever you prefer.",
        "If you reply with your order number, I'll arrange a replacement {product} or a full refund right away.",
    ],
    "late": [
        "Could you share your order number (NW- followed by five digits)? I'll check with the courier, and if it's lost I'll send a replacement or refund you.",
        "Please send me your order number and I'll chase the courier; if it can't be found I'll replace or refund it.",
    ],
    "missing": [
        "Could you give me your order number? I'll send the missing {product} at no cost or refund it.",
        "Please reply with your order number (starts with NW-) and I'll ship the missing item or refund it.",
    ],
    "refund": [
        "Could you tell me your order number? I'll check the return and issue a refund to your original payment method.",
        "Please send me your order number and I'll start the refund for you.",
    ],
    "address": [
        "Could you tell me your order number? If it hasn't shipped yet I can update the address now.",
        "Please send me the order number and the new address, and I'll change it if the parcel hasn't left yet.",
    ],
    "status": [
        "Could you give me your order number (NW- and five digits)? I'll look up where your parcel is.",
        "Please share your order number and I'll check its status for you.",
    ],
}
TIMELINE = {
    "damaged": [
        "A replacement ships within 1-2 business days; a refund shows up within 3-5 business days.",
        "Replacements go out within 2 business days, and there's no need to send the broken one back.",
    ],
    "late": [
        "You'll get an update by email within 24 hours.",
        "I'll check again in 2 business days and update you.",
    ],
    "missing": [
        "It ships within 1-2 business days.",
        "You'll have it within 3 business days.",
    ],
    "refund": [
        "Refunds reach your account within 3-5 business days.",
        "You'll see the money within 5 business days.",
    ],
    "address": [
        "You'll get a confirmation email within the hour.",
        "The change shows in your account within a few minutes.",
    ],
    "status": [
        "It should arrive within 2 business days.",
        "Delivery is expected within 1-3 business days.",
    ],
}
OFFTOPIC_GOOD = [
    "Sorry, I can only help with Northwind Shop orders, deliveries and returns. Is there anything about an order I can help with?",
    "I'm afraid that's outside what I can help with here. If you have a question about an order, a delivery or a return, just ask!",
]
# support staff fixing punctuation or a word: fewer than 8 characters change (dropped as trivial_edit)
TRIVIAL = [(".", "!"), ("We will", "We'll"), ("Please", "Please,"), ("Sorry", "So sorry"), ("email", "e-mail")]
COMMENTS = [
    "Customer called back later, resolved by phone.",
    "Escalated to the warehouse team.",
    "Courier claim opened.",
    "Customer seemed happy with the answer.",
    "Duplicate of an email ticket.",
    "Checked with logistics, parcel is at the depot.",
]
# on purpose: three training messages that are held-out eval prompts up to case and punctuation,
# so decontamination has something to drop (specs/evals/heldout/prompts.jsonl 001, 020, 034)
LEAKED = [  # (topic, customer message, order number, product)
    ("damaged", "the glass jug of my coffee maker arrived shattered order NW-55120", "NW-55120", "coffee maker"),
    ("missing", "The box for order NW-66714 had the towels, but no bath mat!", "NW-66714", "bath mat"),
    ("status", "has NW-28841 been dispatched yet", "NW-28841", "parcel"),
]


@dataclass
class Case:
    """One customer message and the answers the agent could give to it."""

    topic: str
    ask: str
    order: str | None
    product: str
    fill: dict[str, str]
    history: list[dict[str, str]] = field(default_factory=list)  # earlier turns, if any


class Generator:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.interactions: list[dict] = []
        self.feedback: list[dict] = []
        self.asks_used: set[str] = set()

    # -- content -----------------------------------------------------------------------------

    def order_number(self) -> str:
        return f"NW-{self.rng.randint(10000, 99999)}"

    def case(self, topic: str | None = None, with_order: bool | None = None, fresh: bool = False) -> Case:
        rng = self.rng
        for _ in range(200):
            topic_ = topic or rng.choices(TOPICS, TOPIC_WEIGHTS)[0]
            with_, without = ASK[topic_]
            has_order = (rng.random() < 0.55) if with_order is None else with_order
            if not with_:
                has_order = False
            fill = {
                "product": rng.choice(PRODUCTS),
                "order": self.order_number(),
                "days": str(rng.randint(6, 15)),
                "weekday": rng.choice(WEEKDAYS),
                "address": f"{rng.randint(2, 180)} {rng.choice(STREETS)}",
            }
            ask = rng.choice(with_ if has_order else without).format(**fill)
            if fresh and ask.lower() in self.asks_used:
                continue  # rating groups need a prompt no other group has
            self.asks_used.add(ask.lower())
            history: list[dict[str, str]] = []
            if rng.random() < 0.12:
                history = [
                    {"role": "user", "content": rng.choice(["Hi", "Hello there", "hi, quick question", "Good morning"])},
                    {"role": "assistant", "content": "Hello! How can I help you today?"},
                ]
            return Case(topic_, ask, fill["order"] if has_order else None, fill["product"], fill, history)
        raise RuntimeError("ran out of distinct prompts")

    def generic(self, case: Case, avoid: frozenset[str] = frozenset()) -> str:
        options = [a for a in GENERIC[case.topic] if a not in avoid]
        return self.rng.choice(options)

    def good(self, case: Case) -> str:
        rng = self.rng
        if case.topic == "offtopic":
            return rng.choice(OFFTOPIC_GOOD)
        parts = [
            rng.choice(APOLOGY[case.topic]),
            rng.choice((WITH_ORDER if case.order else NO_ORDER)[case.topic]),
            rng.choice(TIMELINE[case.topic]),
        ]
        return " ".join(parts).format(**case.fill)

    def medium(self, case: Case) -> str:
        """Polite and apologetic, but nothing concrete."""
        if case.topic == "offtopic":
            return "Sorry, I can't help with that."
        return f"{self.rng.choice(APOLOGY[case.topic])} We will look into it and get back to you.".format(**case.fill)

    # -- records -----------------------------------------------------------------------------

    def when(self, day_from: int, day_to: int) -> dt.datetime:
        """A time of day during opening hours, on a day counted from 2026-11-01 (day 1)."""
        day = self.rng.randint(day_from, day_to)
        rng = self.rng
        return START + dt.timedelta(days=day - 1, hours=rng.randint(8, 19), minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))

    def interaction(self, case: Case, answer: str, at: dt.datetime, conversation: str | None = None) -> dict:
        record: dict = {
            "schema": "rlops.interaction/v1",
            "interaction_id": "",  # numbered once everything is sorted by time
            "conversation_id": conversation or "",
            "timestamp": at,
            "agent": {"name": "support-agent", "version": "base"},
        }
        if at.date() >= BLACK_FRIDAY_FROM:
            record["system_instructions"] = SYSTEM_BLACK_FRIDAY
        inputs = [*case.history, {"role": "user", "content": case.ask}]
        record["input_messages"] = inputs
        record["output_messages"] = [{"role": "assistant", "content": answer}]
        record["steps"] = []
        if case.order and case.topic in ("late", "status", "missing") and self.rng.random() < 0.6:
            eta = (at + dt.timedelta(days=self.rng.randint(1, 4))).date().isoformat()
            record["steps"] = [
                {
                    "type": "tool_call",
                    "name": "lookup_order",
                    "arguments": {"order_number": case.order},
                    "result": {"status": self.rng.choice(["in_transit", "at_depot", "packed"]), "carrier": "DHL", "eta": eta},
                }
            ]
        prompt_chars = sum(len(m["content"]) for m in inputs) + len(record.get("system_instructions", "")) + 380
        record["usage"] = {"input_tokens": prompt_chars // 4, "output_tokens": max(1, len(answer) // 4)}
        record["outcome"] = {"status": "escalated" if self.rng.random() < 0.04 else "ok"}
        self.interactions.append(record)
        return record

    def event(self, record: dict, kind: str, details: dict, at: dt.datetime, actor: str) -> dict:
        event = {
            "schema": "rlops.feedback/v1",
            "event_id": "",
            "interaction_id": record,  # replaced by the id once interactions are numbered
            "timestamp": at,
            "actor": actor,
            "kind": kind,
            kind: details,
        }
        self.feedback.append(event)
        return event

    # -- scenarios ---------------------------------------------------------------------------

    def edits(self, n: int, n_trivial: int, days: tuple[int, int]) -> None:
        for i in range(n):
            case = self.case()
            answer = self.generic(case)
            if i < n_trivial:
                old, new = next((o, w) for o, w in TRIVIAL[i % len(TRIVIAL) :] + TRIVIAL if o in answer)
                edited = answer.replace(old, new, 1)
            else:
                edited = self.good(case)
            at = self.when(*days)
            record = self.interaction(case, answer, at)
            edit = {"output_messages": [{"role": "assistant", "content": edited}]}
            self.event(record, "edit", edit, at + dt.timedelta(minutes=self.rng.randint(1, 9)), self.rng.choice(STAFF))

    def leaked_edits(self) -> None:
        for topic, ask, order, product in LEAKED:
            fill = {"product": product, "order": order, "days": "5", "weekday": "Friday", "address": ""}
            case = Case(topic, ask, order, product, fill)
            at = self.when(3, 20)
            record = self.interaction(case, self.generic(case), at)
            edit = {"output_messages": [{"role": "assistant", "content": self.good(case)}]}
            self.event(record, "edit", edit, at + dt.timedelta(minutes=4), self.rng.choice(STAFF))

    def ab_tests(self, n: int, days: tuple[int, int], judged_twice: int = 0) -> None:
        for i in range(n):
            case = self.case()
            better = self.good(case) if self.rng.random() < 0.8 else self.medium(case)
            worse = self.generic(case)
            at = self.when(*days)
            conversation = f"ab-{len(self.interactions)}"
            a = self.interaction(case, better, at, conversation)
            b = self.interaction(case, worse, at, conversation)
            shown = [a, b] if self.rng.random() < 0.5 else [b, a]
            for j in range(2 if i < judged_twice else 1):  # some A/B tests were judged by two people
                choice = {"chosen_id": a, "rejected_id": b, "shown_order": shown}
                later = at + dt.timedelta(hours=self.rng.randint(1, 30), minutes=j)
                self.event(a, "pairwise", choice, later, STAFF[(i + j) % len(STAFF)])

    def rated(self, case: Case, answer: str, value: int, at: dt.datetime) -> dict:
        record = self.interaction(case, answer, at)
        rating = {"value": value, "scale": [1, 5]}
        later = at + dt.timedelta(hours=self.rng.randint(1, 20), minutes=self.rng.randint(0, 59))
        return self.event(record, "rating", rating, later, f"customer:anon-{self.rng.randint(1000, 9999)}")

    def rating_groups(self, n_clear: int, n_triple: int, n_close: int) -> None:
        """Different customers sending the same short message and rating the answers they got."""
        for i in range(n_clear + n_triple + n_close):
            case = self.case(with_order=False, fresh=True)
            first = self.rng.randint(1, 21)
            switch = BLACK_FRIDAY_FROM.day  # keep a group on one side of it: one system prompt per group
            days = (first, min(first + 3, switch - 1)) if first < switch else (first, 22)
            if i < n_clear:
                answers = [(self.good(case), self.rng.choice([4, 5])), (self.generic(case), self.rng.choice([1, 2]))]
            elif i < n_clear + n_triple:
                answers = [(self.good(case), 5), (self.medium(case), 3), (self.generic(case), 1)]
            else:
                g1 = self.generic(case)
                answers = self.rng.choice(
                    [
                        [(g1, 2), (self.generic(case, frozenset({g1})), 2)],
                        [(self.good(case), 5), (self.medium(case), 4)],
                        [(self.medium(case), 3), (g1, 2)],
                    ]
                )
            for answer, value in answers:
                self.rated(case, answer, value, self.when(*days))

    def single_ratings(self, n: int, days: tuple[int, int]) -> None:
        for i in range(n):
            case = self.case(fresh=True)
            answer, value = (self.good(case), 5) if i % 2 else (self.generic(case), self.rng.choice([1, 2, 3]))
            event = self.rated(case, answer, value, self.when(*days))
            if i == 0:  # the customer changed their mind: the later rating counts
                again = dict(event, rating={"value": 3, "scale": [1, 5]}, timestamp=event["timestamp"] + dt.timedelta(minutes=20))
                self.feedback.append(again)

    def unrated(self, n: int, days: tuple[int, int]) -> list[dict]:
        records = []
        for _ in range(n):
            case = self.case()
            answer = self.good(case) if self.rng.random() < 0.3 else self.generic(case)
            records.append(self.interaction(case, answer, self.when(*days)))
        return records

    def comments(self, records: list[dict]) -> None:
        for record in records:
            later = record["timestamp"] + dt.timedelta(hours=self.rng.randint(1, 6))
            self.event(record, "comment", {"text": self.rng.choice(COMMENTS)}, later, self.rng.choice(STAFF))

    def window_edges(self) -> None:
        """Edits just inside and just outside the 2026-11-01..2026-11-24 window."""
        for at, delay in [
            (dt.datetime(2026, 10, 31, 23, 50, tzinfo=dt.timezone.utc), 3),  # given 2026-10-31: outside
            (dt.datetime(2026, 10, 31, 23, 55, tzinfo=dt.timezone.utc), 7),  # given 2026-11-01: inside
            (dt.datetime(2026, 11, 24, 23, 50, tzinfo=dt.timezone.utc), 5),  # given 2026-11-24 23:55: inside
            (dt.datetime(2026, 11, 24, 23, 56, tzinfo=dt.timezone.utc), 6),  # given 2026-11-25: outside
        ]:
            case = self.case(topic="damaged")
            record = self.interaction(case, self.generic(case), at)
            edit = {"output_messages": [{"role": "assistant", "content": self.good(case)}]}
            self.event(record, "edit", edit, at + dt.timedelta(minutes=delay), self.rng.choice(STAFF))

    # -- output ------------------------------------------------------------------------------

    def number(self) -> None:
        """Sort by time, then give ids in that order and resolve references to ids."""
        stamp = lambda r: r["timestamp"]  # noqa: E731
        self.interactions.sort(key=lambda r: (stamp(r), r["input_messages"][-1]["content"], r["output_messages"][0]["content"]))
        for n, record in enumerate(self.interactions, start=1):
            record["interaction_id"] = f"i-{n:06d}"
            record["conversation_id"] = f"c-{n:06d}" if not record["conversation_id"] else record["conversation_id"]
        # the two answers of an A/B test share one conversation: name it after the first
        by_ab: dict[str, str] = {}
        for record in self.interactions:
            if record["conversation_id"].startswith("ab-"):
                record["conversation_id"] = by_ab.setdefault(record["conversation_id"], record["interaction_id"].replace("i-", "c-"))
        ident = lambda ref: ref["interaction_id"] if isinstance(ref, dict) else ref  # noqa: E731
        self.feedback.sort(key=lambda e: (stamp(e), ident(e["interaction_id"]), e["kind"], e["actor"]))
        for n, event in enumerate(self.feedback, start=1):
            event["event_id"] = f"f-{n:06d}"
            event["interaction_id"] = ident(event["interaction_id"])
            if event["kind"] == "pairwise":
                p = event["pairwise"]
                event["pairwise"] = {
                    "chosen_id": ident(p["chosen_id"]),
                    "rejected_id": ident(p["rejected_id"]),
                    "shown_order": [ident(r) for r in p["shown_order"]],
                }
        for record in self.interactions + self.feedback:
            record["timestamp"] = record["timestamp"].strftime("%Y-%m-%dT%H:%M:%SZ")


def dumps(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False)


def malformed_interactions(g: Generator) -> dict[int, str]:
    """Lines that extraction must quarantine, keyed by the 0-based line they replace or precede."""
    by_id = {r["interaction_id"]: r for r in g.interactions}
    bad_role = dict(by_id["i-000040"], input_messages=[{"role": "customer", "content": "My kettle leaks."}])
    no_id = {k: v for k, v in by_id["i-000120"].items() if k != "interaction_id"}
    naive_time = dict(by_id["i-000200"], timestamp="2026-11-14 09:12:44")
    duplicate = dict(by_id["i-000300"], output_messages=[{"role": "assistant", "content": "Let me check that."}])
    return {
        39: dumps(bad_role),  # replaces i-000040: edits of it point at a quarantined interaction
        119: dumps(no_id),
        199: dumps(naive_time),
        -300: dumps(duplicate),  # inserted after i-000300: the id repeats
        -250: dumps(by_id["i-000250"])[:97],  # inserted after i-000250: a line cut off mid-write
    }


def malformed_feedback(g: Generator) -> list[str]:
    by_id = {r["interaction_id"]: r for r in g.interactions}
    a = by_id["i-000061"]
    b = next(r for r in g.interactions[61:] if r["input_messages"] != a["input_messages"])
    base = {"schema": "rlops.feedback/v1", "timestamp": "2026-11-12T15:00:00Z", "actor": "staff:bob"}
    return [
        '{"schema": "rlops.feedback/v1", "event_id": "f-900001", "interaction_id": "i-000101", "kind": "rat',
        dumps({**base, "event_id": "f-900002", "kind": "rating", "rating": {"value": 4, "scale": [1, 5]}}),
        dumps({**base, "event_id": "f-900003", "interaction_id": "i-000102", "kind": "thumbs_up", "thumbs_up": {}}),
        dumps({**base, "event_id": "f-900004", "interaction_id": "i-999999", "kind": "rating", "rating": {"value": 2, "scale": [1, 5]}}),
        dumps({**base, "event_id": "f-900005", "interaction_id": "i-000103", "kind": "rating", "rating": {"value": 7, "scale": [1, 5]}}),
        dumps({**base, "event_id": "f-900006", "interaction_id": a["interaction_id"], "kind": "pairwise",
               "pairwise": {"chosen_id": a["interaction_id"], "rejected_id": b["interaction_id"]}}),
        dumps({**base, "event_id": "f-900007", "interaction_id": "i-000040", "kind": "comment", "comment": {"text": "Leak fixed."}}),
    ]


def generate() -> tuple[str, str]:
    g = Generator(SEED)
    g.edits(110, n_trivial=8, days=(1, 24))
    g.leaked_edits()
    g.window_edges()
    g.edits(4, n_trivial=0, days=(26, 27))  # after the window: a later cycle's data
    g.ab_tests(62, days=(1, 22), judged_twice=2)
    g.ab_tests(2, days=(-4, -3))  # before the window
    g.rating_groups(n_clear=24, n_triple=5, n_close=9)
    g.single_ratings(14, days=(1, 22))
    g.comments(g.unrated(16, days=(1, 24)))
    g.unrated(14, days=(1, 24))
    g.number()

    lines = [dumps(r) for r in g.interactions]
    bad = malformed_interactions(g)
    for at, line in sorted(((k, v) for k, v in bad.items() if k >= 0)):
        lines[at] = line
    for after, line in sorted(((-k, v) for k, v in bad.items() if k < 0), reverse=True):
        lines.insert(after, line)
    interactions = "".join(line + "\n" for line in lines)

    events = [dumps(e) for e in g.feedback]
    for i, line in enumerate(malformed_feedback(g)):
        events.insert(25 + 45 * i, line)
    feedback = "".join(line + "\n" for line in events)
    return interactions, feedback


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files differ from what this script makes")
    args = parser.parse_args(argv)
    outputs = dict(zip(("interactions.jsonl", "feedback.jsonl"), generate()))
    if args.check:
        stale = [n for n, text in outputs.items() if not (HERE / n).is_file() or (HERE / n).read_text(encoding="utf-8") != text]
        for name in stale:
            print(f"data/example/{name} differs from what make_example.py makes; run it to rewrite", file=sys.stderr)
        return 1 if stale else 0
    for name, text in outputs.items():
        (HERE / name).write_text(text, encoding="utf-8", newline="\n")
        print(f"wrote data/example/{name}: {text.count(chr(10))} lines, {len(text.encode())} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
