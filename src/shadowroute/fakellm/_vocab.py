"""Word pools, templates and keyword rules of the task simulators (data, no logic but ``fill``).

Templates of one label never contain a keyword of a label checked before it, so the keyword
rules recover every generated label (a test checks this for thousands of draws).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

__all__ = [
    "GENERIC_QUESTIONS",
    "GENERIC_WRONG",
    "INTENT_PATTERNS",
    "INTENT_TEMPLATES",
    "NAMES",
    "PRODUCTS",
    "REVIEW_FILLERS",
    "REVIEW_OPENERS",
    "REVIEW_SENTENCES",
    "SENTIMENT_PATTERNS",
    "STOPWORDS",
    "fill",
]

NAMES = ("Maria", "James", "Aiko", "Lucas", "Priya", "Omar", "Sofia", "Daniel", "Chen", "Fatima")
PRODUCTS = ("wireless headphones", "coffee maker", "standing desk", "smart watch", "blender",
            "yoga mat", "desk lamp", "backpack", "air purifier", "electric kettle")
CITIES = ("Berlin", "Lyon", "Austin", "Osaka", "Toronto", "Porto", "Melbourne")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
SKILLS = ("Spanish", "the guitar", "Python", "watercolor painting", "chess")
PLANTS = ("basil plant", "fiddle leaf fig", "orchid", "succulent")

_SLOTS: dict[str, Callable[[random.Random], str]] = {
    "name": lambda rng: rng.choice(NAMES),
    "product": lambda rng: rng.choice(PRODUCTS),
    "city": lambda rng: rng.choice(CITIES),
    "day": lambda rng: rng.choice(DAYS),
    "skill": lambda rng: rng.choice(SKILLS),
    "plant": lambda rng: rng.choice(PLANTS),
    "order": lambda rng: f"#{rng.randint(10000, 99999)}",
    "amount": lambda rng: f"${rng.randint(5, 300)}.{rng.choice(('00', '49', '99'))}",
}


def fill(template: str, rng: random.Random) -> str:
    """Replace ``{slot}`` placeholders with draws from the pools, left to right."""
    return re.sub(r"\{(\w+)\}", lambda m: _SLOTS[m.group(1)](rng), template)


# --- classify_intent -------------------------------------------------------------------------
INTENT_PATTERNS = {
    "refund": r"\brefund|\bmoney back\b|\breimburs",
    "cancel": r"\bcancel|\bunsubscribe\b|\bclose my account\b",
    "shipping": r"\b(package|parcel|deliver(y|ed)?|shipped|shipping|tracking|courier|arriv(e|ed|es))\b",
    "billing": r"\b(charged|invoice|payment|credit card|bill(ed|ing)?|receipt)\b",
    "technical": r"\b(error|crash(es|ed|ing)?|log ?in|password|app|bug|freez(es|ing)|website|sync)\b",
}

INTENT_TEMPLATES = {
    "refund": (
        "I returned the {product} two weeks ago and still have not received my refund for "
        "order {order}.",
        "The {product} arrived broken. I want my money back, please.",
        "Can I get a refund for the {product}? It is not what I expected.",
        "Please refund the {amount} you took for order {order}, I never used it.",
        "Hi, my name is {name}. I'd like to be reimbursed for the {product} that stopped working.",
    ),
    "cancel": (
        "Please cancel my subscription before the next renewal on {day}.",
        "I placed order {order} by mistake, can you cancel it?",
        "How do I cancel my membership? I don't use it anymore.",
        "I want to unsubscribe from the premium plan effective today.",
        "Hello, this is {name}. Please close my account, I am moving abroad.",
    ),
    "shipping": (
        "Where is my package? Order {order} was supposed to arrive on {day}.",
        "The tracking number for order {order} has not updated in five days.",
        "Can you deliver to {city} instead of my home address?",
        "My parcel shows as delivered but nothing is at my door.",
        "How long does shipping to {city} usually take?",
    ),
    "billing": (
        "I was charged twice for order {order}, {amount} each time.",
        "Could you send me an invoice with my company name on it?",
        "My credit card was declined but the payment still shows as pending.",
        "Why is my bill {amount} higher this month?",
        "I need a receipt for the {product} for my expense report.",
    ),
    "technical": (
        "The app crashes every time I open the settings page.",
        "I can't log in, it keeps saying my password is wrong.",
        "The website shows an error when I try to check out.",
        "My {product} does not sync with my phone anymore.",
        "After the update the {product} freezes on the start screen.",
    ),
    "other": (
        "Do you have a store in {city}?",
        "What are your opening hours on {day}?",
        "I just wanted to say your team was really helpful last week.",
        "Do you sell the {product} in other colors?",
        "Is there a student discount on the {product}?",
    ),
}

# --- sentiment -------------------------------------------------------------------------------
SENTIMENT_PATTERNS = {
    "positive": r"\b(love[sd]?|excellent|great|fantastic|perfect(ly)?|amazing|recommend|delighted)\b",
    "negative": r"\b(terrible|broke|awful|disappointed|waste|worst|useless|stopped working)\b",
    "neutral": r"\b(okay|average|fine|nothing special|as described|does the job|mixed feelings)\b",
}

REVIEW_OPENERS = (
    "I bought the {product} last month.",
    "Review of the {product}:",
    "Got this {product} as a gift for my sister.",
    "Been using the {product} for a few weeks now.",
)

REVIEW_SENTENCES = {
    "positive": (
        "I love how quiet it is.",
        "The build quality is excellent.",
        "Setup took two minutes and it works perfectly.",
        "Honestly the best purchase I made this year, I recommend it to anyone.",
        "Great value for the price.",
        "My whole family is delighted with it.",
    ),
    "negative": (
        "It broke after three days.",
        "Terrible customer service when I asked for help.",
        "Total waste of money.",
        "Really disappointed with the battery life.",
        "The worst purchase I have made in years.",
        "The buttons are useless and feel cheap.",
    ),
    "neutral": (
        "It's okay for the price.",
        "Battery life is average.",
        "It does the job, nothing special.",
        "Arrived on time and looks as described.",
        "Works fine, though the manual could be clearer.",
        "I have mixed feelings about it.",
    ),
}

REVIEW_FILLERS = (
    "I use it mostly at home.",
    "It comes in three colors.",
    "I paid {amount} for it.",
    "My previous one lasted four years.",
)

# --- generic ---------------------------------------------------------------------------------
STOPWORDS = frozenset(
    "what which would could should there their about with this that have from your does when "
    "where some best into than then they them also just like want need know tell make much many "
    "more most very been were will shall here please thanks thank help explain".split()
)

GENERIC_QUESTIONS = (
    "What is the best way to learn {skill} in my spare time?",
    "How should I plan a weekend trip to {city}?",
    "Can you explain how compound interest works?",
    "Any tips for keeping a {plant} alive indoors?",
    "How do I write a polite reminder email to a colleague?",
)

GENERIC_WRONG = (
    "That is a great question. There are many factors to consider, and the right choice depends "
    "on a lot of things, so it is hard to say anything definite without more context.",
    "I'm not able to help with that request right now. Please try rephrasing it or ask "
    "something else.",
    "Generally speaking, it is best to consult an expert. Everyone's situation is different, "
    "and general advice may not apply to you.",
)
