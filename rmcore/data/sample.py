"""python -m rmcore.data.sample OUT_DIR [--seed N] [--prompts N]

A built-in sample of raw human-preference label files, generated deterministically.

The sample is the project's own data: prompts come from question templates over a bank of
topics, the chosen response answers on topic with facts from that topic's bank, and the
rejected one is off-topic, evasive, confidently wrong or rude. About a third of rejected
responses are longer than the chosen one, so "the longer response wins" is a weak baseline.

Four files are written, in the formats the ingester reads:

- `pairs_trl.jsonl`: TRL's standard format {prompt, chosen, rejected, category}; a few rows
  give message lists, and some rows repeat an earlier row verbatim, with irregular whitespace,
  or in decomposed Unicode (NFD), so that deduplication on normalized text matters.
- `votes_labelled.csv.gz`: per-annotator votes {prompt, response_a, response_b, label,
  annotator, category}; pairs get one vote, three votes (unanimous or 2-1), a 1-1 split, or a
  tie, and some votes arrive twice with the responses swapped and the label flipped.
  Cells may hold quoted newlines (numbered lists).
- `rankings.jsonl`: {prompt, responses, ranks, category}, K = 3..5, rank 0 best, no ties.
- `hh_transcripts.jsonl.gz`: Anthropic HH-RLHF transcripts {chosen, rejected}, some multi-turn.

Bad rows are planted in every file; the manifest gives each one's file, 1-based row (JSONL:
line number; CSV: record number after the header) and the ingester's reason code, with the
counts of duplicates, vote patterns and multi-turn transcripts. The same seed writes the same
bytes.
"""

import argparse
import csv
import dataclasses
import gzip
import io
import json
import random
import sys
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rmcore.data.atomic import replacing
from rmcore.data.normalize import normalized_text
from rmcore.data.records import Reason

T = TypeVar("T")

TRL_FILE = "pairs_trl.jsonl"
VOTES_FILE = "votes_labelled.csv.gz"
RANKINGS_FILE = "rankings.jsonl"
HH_FILE = "hh_transcripts.jsonl.gz"
VOTES_HEADER = ("prompt", "response_a", "response_b", "label", "annotator", "category")
ANNOTATORS = ("ann1", "ann2", "ann3", "ann4", "ann5")

REJECTED_LONGER_SHARE = 0.35
"""Share of pairs whose rejected response is longer than the chosen one."""
TRL_MESSAGE_SHARE = 0.04
"""Share of TRL rows whose prompt and responses are message lists."""
TRL_DUPLICATE_SHARE = 0.08
"""Share of TRL lines that repeat an earlier line (verbatim, whitespace or NFD variant)."""
VOTE_FLIP_SHARE = 0.06
"""Share of a/b votes that arrive a second time with the responses swapped."""
HH_MULTI_TURN_SHARE = 0.3
"""Share of HH conversations with an earlier Human/Assistant exchange."""
FILE_SHARES = {TRL_FILE: 0.38, VOTES_FILE: 0.28, RANKINGS_FILE: 0.14, HH_FILE: 0.20}
"""How the prompts (after those reserved for bad rows) are divided among the files."""
VOTE_KINDS = {"single": 0.6, "unanimous": 0.1, "majority": 0.1, "conflict": 0.1, "tie": 0.1}
"""How often a voted pair gets each voting pattern."""

BAD_ROWS: dict[str, tuple[Reason, ...]] = {
    TRL_FILE: (
        Reason.MALFORMED,
        Reason.INVALID_UTF8,
        Reason.MISSING_FIELD,
        Reason.NULL_FIELD,
        Reason.NON_STRING,
        Reason.NON_STRING,
        Reason.EMPTY_TEXT,
        Reason.EMPTY_TEXT,
        Reason.IDENTICAL_RESPONSES,
        Reason.UNKNOWN_ROLE,
    ),
    VOTES_FILE: (
        Reason.UNKNOWN_LABEL,
        Reason.UNKNOWN_LABEL,
        Reason.EMPTY_TEXT,
        Reason.IDENTICAL_RESPONSES,
    ),
    RANKINGS_FILE: (Reason.MALFORMED, Reason.NON_STRING, Reason.INVALID_RANKS),
    HH_FILE: (Reason.PROMPT_MISMATCH, Reason.MISSING_FIELD, Reason.EMPTY_TEXT),
}
"""The bad rows planted in each file, one prompt of their own each."""
N_BAD_ROWS = sum(len(reasons) for reasons in BAD_ROWS.values())
MIN_PROMPTS = N_BAD_ROWS + 20
MAX_TRIES = 1000


@dataclass(frozen=True)
class Topic:
    """A subject: slot fillers for question templates, a fact bank and common myths."""

    name: str
    entities: tuple[str, ...]
    facts: tuple[str, ...]
    myths: tuple[str, ...]


TOPICS: tuple[Topic, ...] = (
    Topic(
        "cooking",
        (
            "knife skills",
            "braising beef",
            "making a pan sauce",
            "cooking rice on the stove",
            "seasoning a cast-iron skillet",
            "jalapeño salsa",
        ),
        (
            "Keep your knife sharp: a dull blade slips off an onion and is more dangerous than a sharp one.",
            "Pat meat dry before searing so it browns instead of steaming in the pan.",
            "Salt pasta water generously, roughly a tablespoon for every four litres.",
            "Let roasted meat rest for five to ten minutes so the juices settle before slicing.",
            "Deglaze the pan with stock or wine and scrape up the browned bits for a quick sauce.",
            "For fluffy rice, rinse it until the water runs clear and use 1.5 parts water to 1 of rice.",
            "Season in layers and taste as you go rather than adding all the salt at the end.",
            "Heat a cast-iron skillet slowly and oil it lightly after washing to keep the seasoning intact.",
        ),
        (
            "You should always rinse raw chicken in the sink before cooking it.",
            "Searing meat seals in all the juices, so resting it is pointless.",
        ),
    ),
    Topic(
        "baking",
        (
            "sourdough bread",
            "crème brûlée",
            "pie crust",
            "chocolate chip cookies",
            "proofing yeast dough",
            "measuring flour",
        ),
        (
            "Weigh flour with a kitchen scale; a scooped cup can be 20% heavier than a spooned one.",
            "Keep the butter cold for pie crust so it forms flaky layers in the oven.",
            "A sourdough starter is ready when it doubles within four to eight hours of feeding.",
            "Bake crème brûlée in a water bath at a low temperature so the custard sets without curdling.",
            "Chill cookie dough for at least an hour to deepen the flavour and reduce spreading.",
            "An oven thermometer helps, because many home ovens run 10 to 20 degrees off.",
            "Dough is properly proofed when a gentle poke springs back slowly and leaves a small dent.",
            "Let bread cool on a rack before slicing; the crumb keeps setting as it cools.",
        ),
        (
            "Opening the oven door has no effect at all on how a cake rises.",
            "You can swap baking soda and baking powder one for one in any recipe.",
        ),
    ),
    Topic(
        "travel",
        (
            "packing a carry-on",
            "jet lag",
            "travel insurance",
            "visiting Zürich on a budget",
            "café culture in Paris",
            "booking cheap flights",
        ),
        (
            "Roll your clothes and use packing cubes to fit a week of clothing into a carry-on.",
            "Shift your sleep schedule by an hour a day before a long flight to soften jet lag.",
            "Get morning daylight at your destination; light is the strongest cue for your body clock.",
            "Check that travel insurance covers medical evacuation and cancellation, not just lost luggage.",
            "In Zürich, a day pass for trams and trains is often cheaper than buying single tickets.",
            "In a Paris café, a coffee at the counter usually costs less than the same coffee at a table.",
            "Set fare alerts and stay flexible by a day or two; midweek flights are often cheaper.",
            "Keep digital and paper copies of your passport separate from the passport itself.",
        ),
        (
            "Airlines always drop their prices if you wait to book at the very last minute.",
            "You never need a visa if you are only changing planes.",
        ),
    ),
    Topic(
        "programming in Python",
        (
            "list comprehensions",
            "virtual environments",
            "type hints",
            "reading a CSV file",
            "error handling with exceptions",
            "writing unit tests with pytest",
        ),
        (
            "Create a virtual environment with `python -m venv .venv` so each project has its own packages.",
            "A list comprehension like `[x * x for x in nums if x > 0]` replaces a loop that builds a list.",
            "Type hints like `def mean(xs: list[float]) -> float:` let mypy catch mistakes before you run.",
            "Use the `csv` module or pandas to read CSV files instead of splitting lines on commas yourself.",
            "Catch specific exceptions, such as `except FileNotFoundError:`, rather than a bare `except:`.",
            "With pytest, every function named `test_...` in a `test_*.py` file is collected and run.",
            "Use `with open(path) as f:` so the file is closed even if an error occurs.",
            "Read a traceback from the bottom up: the last line names the error, the lines above show where.",
        ),
        (
            "Python is always too slow for real work, so nobody serious uses it.",
            "Indentation in Python is only a matter of style and never changes what the code does.",
        ),
    ),
    Topic(
        "gardening",
        (
            "growing tomatoes",
            "composting",
            "watering houseplants",
            "pruning roses",
            "raised garden beds",
            "starting seeds indoors",
        ),
        (
            "Tomatoes need six to eight hours of direct sun and deep, infrequent watering.",
            "A compost pile works best with three parts brown material, like dry leaves, to one part green.",
            "Water houseplants when the top two centimetres of soil are dry, then empty the saucer.",
            "Prune roses in late winter, cutting just above an outward-facing bud at a 45-degree angle.",
            "Raised beds warm up faster in spring and drain well, which suits most vegetables.",
            "Start seeds indoors six to eight weeks before the last frost and harden seedlings off slowly.",
            "Mulch around plants to keep moisture in the soil and suppress weeds.",
            "Rotate vegetable families between beds each year to reduce soil-borne disease.",
        ),
        (
            "Watering plants in the midday sun burns the leaves like a magnifying glass.",
            "Adding a little sand to clay soil always improves drainage.",
        ),
    ),
    Topic(
        "personal finance",
        (
            "building an emergency fund",
            "index funds",
            "paying off credit card debt",
            "making a monthly budget",
            "saving for retirement",
            "compound interest",
        ),
        (
            "Aim for an emergency fund of three to six months of essential expenses in a savings account.",
            "Low-cost index funds spread your money across hundreds of companies and charge small fees.",
            "Pay off the card with the highest interest rate first; make minimum payments on the rest.",
            "A simple budget splits take-home pay into needs, wants and savings, for example 50/30/20.",
            "If your employer matches retirement contributions, put in at least enough to get the match.",
            "Compound interest means returns earn returns: at 7% a year, money roughly doubles in ten years.",
            "Automate a transfer to savings on payday so saving happens before spending.",
            "Check a fund's expense ratio; a 1% yearly fee eats a large share of long-term returns.",
        ),
        (
            "Carrying a small balance on your credit card improves your credit score.",
            "You should wait until you earn a lot of money before you start investing.",
        ),
    ),
    Topic(
        "astronomy",
        (
            "the rings of Saturn",
            "the phases of the Moon",
            "meteor showers",
            "choosing a first telescope",
            "why stars twinkle",
            "finding the North Star",
        ),
        (
            "Saturn's rings show up in a small telescope at about 25x magnification when the planet is high.",
            "The Moon's phases show how much of its sunlit half we see as it orbits Earth every 29.5 days.",
            "For meteor showers like the Perseids, go somewhere dark and let your eyes adapt for 20 minutes.",
            "A pair of 10x50 binoculars is a great first instrument before you buy a telescope.",
            "Stars twinkle because turbulence in the atmosphere bends their light; planets twinkle less.",
            "Follow the two end stars of the Big Dipper's bowl to find Polaris, the North Star.",
            "A red flashlight preserves your night vision while you read a star chart.",
            "A Dobsonian reflector gives a beginner the most aperture for the money.",
        ),
        (
            "The seasons happen because Earth is much closer to the Sun in summer.",
            "The Moon has a permanent dark side that never gets any sunlight.",
        ),
    ),
    Topic(
        "fitness",
        (
            "starting strength training",
            "running a first 5K",
            "stretching after workouts",
            "a home workout routine",
            "doing a proper squat",
            "recovery after exercise",
        ),
        (
            "Start with compound lifts such as squats, deadlifts and presses two or three times a week.",
            "A couch-to-5K plan alternates running and walking and builds up over about nine weeks.",
            "Increase training volume gradually, by about 10% a week, to lower the risk of injury.",
            "In a squat, keep feet shoulder-width apart, chest up, and knees tracking over your toes.",
            "Sleep and enough protein, about 1.6 g per kilogram of body weight, support muscle recovery.",
            "Push-ups, lunges and planks make an effective home workout with no equipment.",
            "Gentle stretching after a workout, held for 20 to 30 seconds, helps maintain flexibility.",
            "Rest days let muscles repair; training hard every single day slows progress.",
        ),
        (
            "Lifting weights will make you bulky within a few weeks.",
            "You can burn belly fat by doing hundreds of crunches a day.",
        ),
    ),
    Topic(
        "history",
        (
            "the fall of the Roman Empire",
            "the printing press",
            "the Industrial Revolution",
            "the French Revolution",
            "the pyramids of ancient Egypt",
            "the Silk Road",
        ),
        (
            "The Western Roman Empire ended in 476 AD when Odoacer deposed the emperor Romulus Augustulus.",
            "Gutenberg's printing press, around 1440, made books far cheaper and spread literacy in Europe.",
            "The Industrial Revolution began in Britain in the late 1700s with textile mills and steam.",
            "The French Revolution began in 1789; the storming of the Bastille is remembered on 14 July.",
            "The Great Pyramid of Giza was built for the pharaoh Khufu around 2560 BC.",
            "The Silk Road linked China with the Mediterranean and carried ideas as well as silk.",
            "Historians compare primary sources, such as letters and records, to check one against another.",
            "The Eastern Roman Empire, or Byzantium, lasted until Constantinople fell in 1453.",
        ),
        (
            "The pyramids were built by slaves who were forced to work for nothing.",
            "People in the Middle Ages all believed that the Earth was flat.",
        ),
    ),
    Topic(
        "music",
        (
            "learning guitar chords",
            "reading sheet music",
            "practising piano scales",
            "music theory basics",
            "Dvořák's New World Symphony",
            "tuning a guitar",
        ),
        (
            "Start guitar with the open chords G, C, D and E minor; they cover hundreds of songs.",
            "In the treble clef, the lines spell E, G, B, D, F from the bottom up.",
            "Practise scales slowly with a metronome and raise the tempo only when every note is even.",
            "A major scale follows the pattern whole, whole, half, whole, whole, whole, half.",
            "Dvořák wrote the New World Symphony in 1893 while he was living in the United States.",
            "Tune the low E string with a tuner first, then tune the other strings relative to it.",
            "Twenty minutes of daily practice beats one long session a week.",
            "Recording yourself reveals timing problems you do not notice while playing.",
        ),
        (
            "You need perfect pitch to learn an instrument properly.",
            "Learning to read music ruins your ability to play by ear.",
        ),
    ),
    Topic(
        "pets",
        (
            "house-training a puppy",
            "introducing a new cat",
            "feeding a senior dog",
            "keeping goldfish",
            "trimming a dog's nails",
            "crate training",
        ),
        (
            "Take a puppy outside after meals, naps and play, and reward it right after it goes.",
            "Introduce a new cat slowly: give it its own room and swap bedding so the cats learn each scent.",
            "Senior dogs often need fewer calories and more joint support; ask your vet about their food.",
            "Goldfish need a filtered tank of at least 75 litres, not a small bowl.",
            "Trim a dog's nails a little at a time to avoid the quick, the blood vessel inside the nail.",
            "A crate should be just big enough for the dog to stand, turn around and lie down.",
            "Reward-based training with treats and praise works better than punishment.",
            "Keep chocolate, grapes and onions away from dogs; they are toxic to them.",
        ),
        (
            "A dog with a warm, dry nose must be sick.",
            "Cats always land on their feet, so falls cannot hurt them.",
        ),
    ),
    Topic(
        "photography",
        (
            "the exposure triangle",
            "shooting in low light",
            "the rule of thirds",
            "portrait photography",
            "choosing a first lens",
            "editing RAW files",
        ),
        (
            "The exposure triangle is aperture, shutter speed and ISO; change one and balance the others.",
            "In low light, open the aperture, slow the shutter, and brace the camera or use a tripod.",
            "The rule of thirds places the subject along the grid lines rather than dead centre.",
            "For portraits, focus on the nearest eye and use a wide aperture like f/1.8 to blur the back.",
            "A 50 mm prime lens is an affordable, sharp first lens for most cameras.",
            "RAW files keep more detail in highlights and shadows than JPEGs, so they are easier to edit.",
            "Shoot during the golden hour, just after sunrise or before sunset, for soft and warm light.",
            "Keep the shutter speed at least 1/focal length to avoid blur from camera shake.",
        ),
        (
            "More megapixels always means better photos.",
            "You need an expensive camera body to take good pictures.",
        ),
    ),
    Topic(
        "coffee",
        (
            "pour-over coffee",
            "using a French press",
            "choosing coffee beans",
            "grinding coffee at home",
            "pulling an espresso shot",
            "cold brew",
        ),
        (
            "Use about 1 gram of coffee for every 16 grams of water as a starting ratio for pour-over.",
            "For a French press, use a coarse grind and steep for about four minutes before pressing.",
            "Buy whole beans roasted within the last few weeks and store them in an airtight container.",
            "A burr grinder gives a more even grind than a blade grinder, so the taste is more consistent.",
            "An espresso shot usually runs 25 to 30 seconds; if it runs faster, grind finer.",
            "Cold brew steeps coarse grounds in cold water for 12 to 18 hours.",
            "Water just off the boil, around 93 °C, extracts coffee well without scorching it.",
            "A café crème in much of Europe is a long espresso with milk, so ask if you want it stronger.",
        ),
        (
            "Darker roasts always contain far more caffeine than light roasts.",
            "Keeping beans in the freezer with the bag open keeps them fresh for months.",
        ),
    ),
    Topic(
        "cycling",
        (
            "fixing a flat tyre",
            "choosing a road bike",
            "cycling in traffic",
            "chain maintenance",
            "saddle height",
            "commuting by bike",
        ),
        (
            "To fix a flat, remove the tube, find the hole, check the tyre for thorns, then patch it.",
            "Set the saddle so your knee is slightly bent at the bottom of the pedal stroke.",
            "Clean and lube the chain every few hundred kilometres, and wipe off the excess oil.",
            "In traffic, ride predictably, signal your turns, and stay out of the door zone of parked cars.",
            "Check tyre pressure weekly; the recommended range is printed on the tyre sidewall.",
            "For commuting, mudguards, lights and a rear rack make daily riding far more practical.",
            "Get a bike that fits your height; frame size matters more than the brand.",
            "Shift to an easier gear before you stop so that starting again is easy.",
        ),
        (
            "A helmet is pointless on short rides.",
            "Higher tyre pressure is always faster on every kind of road.",
        ),
    ),
    Topic(
        "home repair",
        (
            "fixing a leaky faucet",
            "patching drywall",
            "unclogging a drain",
            "painting a room",
            "hanging a heavy shelf",
            "resetting a tripped breaker",
        ),
        (
            "Turn off the water before taking a leaky faucet apart; a worn washer is the usual culprit.",
            "Patch small drywall holes with spackle, let it dry, sand it smooth, then prime before painting.",
            "A plunger or a drain snake clears most clogs; never mix chemical drain cleaners.",
            "Before painting a room, clean the walls, tape the edges, and prime any patched spots.",
            "Screw heavy shelves into the wall studs, found with a stud finder, or use rated anchors.",
            "Switch a tripped breaker fully off, then on; if it trips again, call an electrician.",
            "Keep a basic kit: a cordless drill, a level, a tape measure and a set of screwdrivers.",
            "Re-caulk around tubs and sinks every few years to keep water out of the walls.",
        ),
        (
            "You can skip turning off the power for quick electrical jobs.",
            "Plastic wall plugs hold any weight as long as you use enough of them.",
        ),
    ),
    Topic(
        "chess",
        (
            "chess openings",
            "checkmate patterns",
            "the endgame",
            "getting better at chess",
            "castling",
            "forks and pins",
        ),
        (
            "In the opening, control the centre, develop your knights and bishops, and castle early.",
            "Castling moves the king two squares toward a rook, which jumps over it; neither may have moved.",
            "A fork attacks two pieces at once, and knights are especially good at forks.",
            "A pin stops a piece from moving because a more valuable piece stands behind it.",
            "In the endgame, bring your king to the centre; it becomes a strong piece.",
            "Solve tactics puzzles every day to learn patterns such as the back-rank mate.",
            "Review your lost games to find the move where the evaluation changed.",
            "Before every move, ask what your opponent's last move threatens.",
        ),
        (
            "You must memorise dozens of openings before you can play well.",
            "Bring your queen out in the first few moves to attack as early as possible.",
        ),
    ),
    Topic(
        "language learning",
        (
            "learning Spanish vocabulary",
            "practising pronunciation",
            "spaced repetition flashcards",
            "speaking with native speakers",
            "learning grammar",
            "staying motivated",
        ),
        (
            "Spaced repetition apps show a word just before you would forget it, so review is efficient.",
            "Learn the 1,000 most frequent words first; they cover a large share of everyday speech.",
            "Shadowing, repeating audio right after a native speaker, improves pronunciation and rhythm.",
            "Language exchanges let you practise speaking with native speakers in return for helping them.",
            "Study grammar in context, from sentences you understand, not only from tables.",
            "In Spanish, ñ is a separate letter, so año (year) and ano are different words.",
            "Fifteen minutes of daily practice builds more progress than one long session a week.",
            "Watch shows with subtitles in the target language to connect spelling and sound.",
        ),
        (
            "Adults cannot learn a new language to a high level.",
            "You should never speak until your grammar is perfect.",
        ),
    ),
    Topic(
        "sleep",
        (
            "falling asleep faster",
            "a bedtime routine",
            "napping",
            "caffeine and sleep",
            "insomnia",
            "sleeping in a hot room",
        ),
        (
            "Keep the same wake-up time every day, weekends included, to anchor your body clock.",
            "A cool, dark and quiet bedroom, around 18 °C, helps most people sleep.",
            "Caffeine has a half-life of about five hours, so an afternoon coffee can still affect sleep.",
            "Keep naps short, around 20 minutes, and take them before mid-afternoon.",
            "If you cannot sleep after about 20 minutes, get up and do something calm until you feel sleepy.",
            "Dim screens and lights an hour before bed; bright light delays melatonin.",
            "Cognitive behavioural therapy for insomnia (CBT-I) is the recommended first treatment.",
            "Most adults need seven to nine hours of sleep a night.",
        ),
        (
            "A glass of wine before bed improves the quality of your sleep.",
            "You can fully catch up on a week of lost sleep in one weekend.",
        ),
    ),
    Topic(
        "hiking",
        (
            "planning a day hike",
            "choosing hiking boots",
            "packing for a hike",
            "hiking in the heat",
            "navigating with a map and compass",
            "avoiding blisters",
        ),
        (
            "Tell someone your route and expected return time before you set out.",
            "Pack the ten essentials, including water, food, layers, a map, a headlamp and a first-aid kit.",
            "Break in new hiking boots on short walks before a long trail.",
            "Wool or synthetic socks, not cotton, help prevent blisters.",
            "In hot weather, start early, drink regularly, and rest in the shade through the midday heat.",
            "Orient the map with a compass so that north on the map matches north on the ground.",
            "Turn back when the weather changes; the summit will still be there next time.",
            "Plan on about one hour per 5 km, plus an hour for every 600 m of climb.",
        ),
        (
            "Water from a clear mountain stream is always safe to drink untreated.",
            "Cotton jeans are ideal for long hikes.",
        ),
    ),
    Topic(
        "car maintenance",
        (
            "changing the engine oil",
            "checking tyre pressure",
            "jump-starting a car",
            "worn brake pads",
            "a check-engine light",
            "getting a car ready for winter",
        ),
        (
            "Check the owner's manual for the oil change interval; many modern cars go 10,000 km or more.",
            "Check tyre pressure cold, using the figures on the sticker inside the driver's door.",
            "To jump-start, connect red to both plus terminals, then black to bare metal on the dead car.",
            "A squeal when braking often means the brake pads' wear indicators are touching the disc.",
            "A steady check-engine light means get the code read soon; a flashing one means stop driving.",
            "Before winter, check the battery, antifreeze and wiper blades, and consider winter tyres.",
            "Rotate the tyres every 10,000 km or so for even wear.",
            "Keep a record of services; it helps resale value and makes recurring faults easier to spot.",
        ),
        (
            "You must idle a modern car for ten minutes before driving in winter.",
            "Premium fuel makes any car faster and cleaner.",
        ),
    ),
    Topic(
        "writing",
        (
            "writing a cover letter",
            "résumé writing",
            "writer's block",
            "editing your own writing",
            "writing a short story",
            "clear business emails",
        ),
        (
            "Tailor a cover letter: name the role, show one concrete achievement, and say why this company.",
            "On a résumé, start bullet points with strong verbs and add numbers, like 'cut costs by 15%'.",
            "To get past writer's block, draft quickly and fix it later; drafting and editing are two jobs.",
            "Read your draft aloud; awkward sentences become obvious when you hear them.",
            "A short story usually centres on one character who wants something and meets an obstacle.",
            "Put the request in the first line of a business email and keep each email to one topic.",
            "Cut filler words like 'very' and 'really', and prefer the active voice.",
            "Let a draft rest for a day before editing so you see it with fresh eyes.",
        ),
        (
            "A longer résumé always looks more impressive.",
            "Good writers never need to revise their first draft.",
        ),
    ),
    Topic(
        "birdwatching",
        (
            "identifying birds by song",
            "binoculars for birding",
            "attracting birds to a garden",
            "keeping a bird list",
            "bird migration",
            "photographing birds",
        ),
        (
            "8x42 binoculars are a popular choice for birding: bright, steady and with a wide field of view.",
            "Learn common songs first, like the robin and the blackbird, then add one new species at a time.",
            "A feeder with sunflower seeds, a water dish and native shrubs will attract many garden birds.",
            "Early morning, when birds are most active and singing, is the best time to go birdwatching.",
            "Apps such as Merlin can suggest a species from a photo or a sound recording.",
            "Many songbirds migrate at night and rest and feed during the day.",
            "Note the size, shape, colour pattern and behaviour before the bird flies off.",
            "Keep a dated list of sightings; it makes patterns across the seasons easy to spot.",
        ),
        (
            "Birds will abandon a chick if a human touches it.",
            "Feeding birds in summer makes them forget how to find food.",
        ),
    ),
    Topic(
        "knitting",
        (
            "casting on",
            "knit and purl stitches",
            "choosing yarn",
            "reading a knitting pattern",
            "fixing a dropped stitch",
            "knitting a first scarf",
        ),
        (
            "The long-tail cast-on is stretchy and a good default for most beginner projects.",
            "Knit and purl are the two basic stitches; alternating rows of each gives stockinette fabric.",
            "Start with smooth, light-coloured worsted-weight yarn so you can see every stitch.",
            "Knit a gauge swatch first; it tells you whether the project will come out the right size.",
            "Use a crochet hook to ladder a dropped stitch back up its column.",
            "A garter-stitch scarf, knitting every row, is a classic first project.",
            "Place stitch markers to mark pattern repeats and the start of a round.",
            "Pattern abbreviations like k2tog mean knit two stitches together, a simple decrease.",
        ),
        (
            "You must buy expensive yarn to knit anything wearable.",
            "Left-handed people cannot learn to knit.",
        ),
    ),
    Topic(
        "nutrition",
        (
            "eating more vegetables",
            "meal prep",
            "reading nutrition labels",
            "getting enough protein",
            "staying hydrated",
            "cutting down on sugar",
        ),
        (
            "Fill half your plate with vegetables and fruit at most meals.",
            "For meal prep, cook a grain, a protein and a tray of roast vegetables to mix through the week.",
            "On a nutrition label, check the serving size first; every other number depends on it.",
            "Beans, lentils, eggs, yoghurt and fish are affordable sources of protein.",
            "Thirst is a fair guide for healthy adults; pale yellow urine suggests you are well hydrated.",
            "Sugary drinks are the main source of added sugar for many people, so swapping them helps most.",
            "Fibre from whole grains, beans and vegetables keeps you full for longer.",
            "A handful of unsalted nuts makes a filling snack with healthy fats.",
        ),
        (
            "Eating after 8 p.m. makes you gain weight no matter what you eat.",
            "All fats are bad for you and should be avoided completely.",
        ),
    ),
)

TEMPLATES = (
    "How do I get started with {entity}?",
    "What are the most common mistakes beginners make with {entity}?",
    "Can you explain {entity} in simple terms?",
    "What should I know about {entity} before I begin?",
    "Give me a few practical tips for {entity}.",
    "I'm new to {topic}. Where does {entity} fit in?",
    "What's the best way to learn about {entity}?",
    "Why does {entity} matter so much in {topic}?",
    "Could you walk me through {entity} step by step?",
    "My friend says {entity} is overrated. Is that true?",
)
FOLLOW_UPS = (
    "Thanks! What about {entity}?",
    "That helps. Any advice on {entity} as well?",
    "Great. And how does {entity} fit into all this?",
    "OK, one more thing: what should I know about {entity}?",
)
OPENERS = (
    "Good question! Here's what works for {entity}.",
    "{Entity} is easier than it looks once you know a few basics.",
    "Here is a practical way to approach {entity}.",
    "Happy to help with {entity} — here are the key points.",
    "When it comes to {entity}, a few things matter most.",
    "Sure. For {entity}, I'd focus on the following.",
)
LIST_INTROS = (
    "Here are the steps I'd follow for {entity}:",
    "A few tips for {entity}:",
    "For {entity}, keep these points in mind:",
)
CLOSERS = (
    "Start small and adjust as you go.",
    "Give it a couple of weeks of practice and it will feel natural.",
    "If anything is unclear, tell me more about your situation and I can be more specific.",
    "It is naïve to expect perfection on day one, so be patient with yourself.",
    "That should give you a solid start with {topic}.",
)
EVASIVE = (
    "I'm not sure, you could look it up.",
    "Hard to say. There's a lot written about {entity} online, so maybe search for it.",
    "That really depends on your situation. Ask someone who knows more about {topic}.",
    "I don't really have an opinion on that. Everyone does {entity} differently.",
    "There are many ways to think about it, and it's hard to give a single answer.",
    "Maybe try a forum? People there probably know more about {entity} than I do.",
)
RUDE = (
    "Seriously? Everyone knows this. Figure out {entity} yourself.",
    "Not this again. Just google it like everyone else.",
    "That's a lazy question. Put in some effort before asking about {entity}.",
    "Who cares about {entity}? Find a better hobby.",
    "Ugh. Read a manual, it's all in there.",
)
WRONG_OPENERS = (
    "Honestly, {entity} is simpler than people make it sound.",
    "Forget what the guides say about {entity}.",
    "Here's the truth about {entity} that nobody tells you.",
    "Easy — {entity} just comes down to one thing.",
)
BLUSTER = (
    "Trust me, I've done this for years.",
    "Anyone who tells you otherwise is overcomplicating it.",
    "The experts only say the opposite to sell you things.",
    "Don't bother with the details; they don't matter.",
    "I've never needed more than that, and neither will you.",
    "Most of the standard advice about {topic} is a waste of time.",
)
SYSTEM_PROMPT = "You are a helpful assistant."
NAIVE_NOTE = "It is naïve to think there is only one right way."
"""Appended to the invalid-UTF-8 row so that it holds a character to mis-encode."""


@dataclass(frozen=True)
class Prompt:
    """A question about one entity of one topic."""

    topic: Topic
    entity: str
    text: str


@dataclass(frozen=True)
class BadRow:
    """A planted bad row: its file, 1-based row number and the ingester's reason code."""

    file: str
    row: int
    reason: Reason


@dataclass(frozen=True)
class SampleFile:
    """One written file and what an ingester should make of it."""

    name: str
    """File name inside the output folder."""
    rows: int
    """Data rows: JSONL lines, or CSV records after the header."""
    bad_rows: tuple[BadRow, ...]
    """The planted bad rows, in file order."""
    duplicates: int
    """Good rows repeating an earlier judgment (normalized text, either A/B orientation)."""
    comparisons: int
    """Distinct pairwise judgments in the good rows (a ranking of K gives K(K-1)/2)."""


@dataclass(frozen=True)
class TrlCounts:
    """What was planted in the TRL file."""

    message_list_rows: int
    """Rows whose prompt and responses are message lists (none of them duplicated)."""
    duplicates_verbatim: int
    """Lines repeating an earlier line byte for byte."""
    duplicates_whitespace: int
    """Lines repeating an earlier row with doubled and trailing spaces."""
    duplicates_unicode: int
    """Lines repeating an earlier row in decomposed Unicode (NFD)."""


@dataclass(frozen=True)
class VoteCounts:
    """The voting patterns planted in the votes file; every pair has exactly one."""

    single_vote_pairs: int
    """Pairs with one a/b vote."""
    unanimous_pairs: int
    """Pairs with three votes for the same response."""
    majority_pairs: int
    """Pairs with three votes split 2-1."""
    conflict_pairs: int
    """Pairs with two votes split 1-1 (p_chosen = 0.5)."""
    tie_pairs: int
    """Pairs with one vote, a tie."""
    flipped_duplicates: int
    """Votes repeated by the same annotator with the responses swapped and the label flipped."""


@dataclass(frozen=True)
class SampleManifest:
    """The files written by `write_sample` and everything planted in them."""

    seed: int
    n_prompts: int
    files: tuple[Path, ...]
    """The paths written."""
    contents: tuple[SampleFile, ...]
    """What each file holds, in the order of `files`."""
    trl: TrlCounts
    votes: VoteCounts
    multi_turn_transcripts: int
    """HH records whose prompt holds an earlier Human/Assistant exchange."""

    def file(self, name: str) -> SampleFile:
        """What the file called `name` holds."""
        return next(f for f in self.contents if f.name == name)

    def bad_row_counts(self) -> dict[str, int]:
        """Planted bad rows per reason code, over all files."""
        counts: dict[str, int] = {}
        for bad in (b for f in self.contents for b in f.bad_rows):
            counts[bad.reason.value] = counts.get(bad.reason.value, 0) + 1
        return dict(sorted(counts.items()))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        as_dict = dataclasses.asdict(self) | {"bad_row_counts": self.bad_row_counts()}
        return as_dict | {"files": [str(path) for path in self.files]}


@dataclass(frozen=True)
class Built:
    """A file's bytes and its manifest entry."""

    data: bytes
    file: SampleFile


# ---- text ------------------------------------------------------------------------------


def capitalized(text: str) -> str:
    """`text` with its first letter in upper case."""
    return text[:1].upper() + text[1:]


def build_prompts(rng: random.Random, n: int) -> list[Prompt]:
    """`n` distinct prompts drawn from every (topic, entity, template) combination."""
    every = [
        Prompt(topic, entity, template.format(entity=entity, topic=topic.name))
        for topic in TOPICS
        for entity in topic.entities
        for template in TEMPLATES
    ]
    if not MIN_PROMPTS <= n <= len(every):
        raise ValueError(f"n_prompts must be between {MIN_PROMPTS} and {len(every)}, got {n}")
    return rng.sample(every, n)


def answer(rng: random.Random, topic: Topic, entity: str, n_facts: int) -> str:
    """A helpful on-topic answer: an opener, `n_facts` facts (sometimes a numbered list)."""
    facts = rng.sample(topic.facts, n_facts)
    if n_facts >= 3 and rng.random() < 0.35:
        steps = "\n".join(f"{i}. {fact}" for i, fact in enumerate(facts, start=1))
        text = f"{rng.choice(LIST_INTROS).format(entity=entity)}\n{steps}"
    else:
        opener = rng.choice(OPENERS).format(entity=entity, Entity=capitalized(entity))
        text = " ".join([opener, *facts])
    if rng.random() < 0.5:
        text += " " + rng.choice(CLOSERS).format(topic=topic.name)
    return text


def off_topic(rng: random.Random, topic: Topic, n_facts: int) -> str:
    """A good answer to a question about some other topic."""
    other = rng.choice([t for t in TOPICS if t is not topic])
    return answer(rng, other, rng.choice(other.entities), n_facts)


def evasive(rng: random.Random, topic: Topic, entity: str) -> str:
    """A reply that avoids the question."""
    return rng.choice(EVASIVE).format(entity=entity, topic=topic.name)


def wrong(rng: random.Random, topic: Topic, entity: str, n_bluster: int) -> str:
    """A confident reply built on the topic's myths."""
    myths = rng.sample(topic.myths, rng.randint(1, len(topic.myths)))
    bluster = [b.format(topic=topic.name) for b in rng.sample(BLUSTER, n_bluster)]
    return " ".join([rng.choice(WRONG_OPENERS).format(entity=entity), *myths, *bluster])


def rude(rng: random.Random, topic: Topic, entity: str) -> str:
    """A dismissive reply, sometimes with a myth thrown in."""
    text = rng.choice(RUDE).format(entity=entity)
    return f"{text} {rng.choice(topic.myths)}" if rng.random() < 0.3 else text


def draw_pair(rng: random.Random, topic: Topic, entity: str, longer: bool) -> tuple[str, str]:
    """One (chosen, rejected) draw; `longer` favours a rejected response longer than chosen."""
    if longer:
        chosen = answer(rng, topic, entity, rng.randint(1, 2))
        if rng.random() < 0.6:
            return chosen, off_topic(rng, topic, rng.randint(2, 4))
        return chosen, wrong(rng, topic, entity, rng.randint(1, 3))
    chosen = answer(rng, topic, entity, rng.randint(2, 4))
    styles: dict[str, Callable[[], str]] = {
        "off_topic": lambda: off_topic(rng, topic, rng.randint(1, 2)),
        "evasive": lambda: evasive(rng, topic, entity),
        "wrong": lambda: wrong(rng, topic, entity, rng.randint(0, 1)),
        "rude": lambda: rude(rng, topic, entity),
    }
    style = rng.choices(list(styles), weights=(0.35, 0.3, 0.15, 0.2))[0]
    return chosen, styles[style]()


def pair_key(x: str, y: str) -> frozenset[str]:
    """Identity of an unordered pair of responses."""
    return frozenset((normalized_text(x), normalized_text(y)))


def make_pair(rng: random.Random, topic: Topic, entity: str, seen: set[frozenset[str]]) -> tuple[str, str]:
    """A (chosen, rejected) pair not in `seen` (which it joins); rejected is longer by chance."""
    longer = rng.random() < REJECTED_LONGER_SHARE
    for _ in range(MAX_TRIES):
        chosen, rejected = draw_pair(rng, topic, entity, longer)
        key = pair_key(chosen, rejected)
        if (len(rejected) > len(chosen)) == longer and len(key) == 2 and key not in seen:
            seen.add(key)
            return chosen, rejected
    raise RuntimeError(f"no new pair for {entity!r} after {MAX_TRIES} draws")


def close_pair(rng: random.Random, topic: Topic, entity: str, seen: set[frozenset[str]]) -> tuple[str, str]:
    """Two different good answers: the pairs annotators tie on or disagree about."""
    for _ in range(MAX_TRIES):
        x, y = answer(rng, topic, entity, rng.randint(2, 3)), answer(rng, topic, entity, 2)
        key = pair_key(x, y)
        if len(key) == 2 and key not in seen:
            seen.add(key)
            return x, y
    raise RuntimeError(f"no new close pair for {entity!r} after {MAX_TRIES} draws")


def ranked_responses(rng: random.Random, prompt: Prompt, k: int) -> tuple[list[str], list[int]]:
    """`k` distinct responses of decreasing quality, shuffled, and their ranks (0 best)."""
    topic, entity = prompt.topic, prompt.entity
    tiers: tuple[Callable[[], str], ...] = (
        lambda: answer(rng, topic, entity, rng.randint(3, 4)),
        lambda: answer(rng, topic, entity, 1),
        lambda: evasive(rng, topic, entity),
        lambda: off_topic(rng, topic, rng.randint(1, 3)),
        lambda: wrong(rng, topic, entity, rng.randint(0, 2)),
        lambda: rude(rng, topic, entity),
    )
    for _ in range(MAX_TRIES):
        best_first = [tiers[t]() for t in sorted(rng.sample(range(len(tiers)), k))]
        if len({normalized_text(r) for r in best_first}) == k:
            order = rng.sample(range(k), k)
            return [best_first[i] for i in order], order
    raise RuntimeError(f"no {k} distinct responses for {entity!r} after {MAX_TRIES} draws")


# ---- rows and files ----------------------------------------------------------------------


def json_line(value: dict[str, Any]) -> bytes:
    """One JSONL line (without the newline), UTF-8, non-ASCII kept as is."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def interleave(
    rng: random.Random,
    base: Sequence[T],
    copies: Sequence[tuple[int, T]],
    bad: Sequence[tuple[Reason, T]],
) -> tuple[list[T], list[tuple[int, Reason]]]:
    """Rows in file order and the 1-based rows of the bad ones.

    Base rows keep their order; each copy lands after its source row; bad rows land anywhere
    but first, so that format detection sees a good row.
    """
    n = len(base)
    keyed: list[tuple[tuple[float, int], T, Reason | None]] = [
        ((float(i), 0), row, None) for i, row in enumerate(base)
    ]
    keyed += [((rng.uniform(src, n), 1), row, None) for src, row in copies]
    keyed += [((rng.uniform(0.5, n), 2), row, reason) for reason, row in bad]
    keyed.sort(key=lambda entry: entry[0])
    rows = [row for _, row, _ in keyed]
    bad_rows = [(i, reason) for i, (_, _, reason) in enumerate(keyed, 1) if reason is not None]
    return rows, bad_rows


def jsonl_bytes(lines: Sequence[bytes]) -> bytes:
    """A JSONL file's bytes."""
    return b"".join(line + b"\n" for line in lines)


def gzipped(data: bytes) -> bytes:
    """gzip with no time stamp or file name, so equal input gives equal bytes."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def sample_file(
    name: str, rows: int, bad: Sequence[tuple[int, Reason]], duplicates: int, comparisons: int
) -> SampleFile:
    """A manifest entry."""
    bad_rows = tuple(BadRow(name, row, reason) for row, reason in bad)
    return SampleFile(name, rows, bad_rows, duplicates, comparisons)


def messages(role: str, content: str) -> list[dict[str, str]]:
    """A one-message list."""
    return [{"role": role, "content": content}]


def trl_row(prompt: Prompt, chosen: str, rejected: str) -> dict[str, Any]:
    """A TRL row with plain-text fields."""
    return {
        "prompt": prompt.text,
        "chosen": chosen,
        "rejected": rejected,
        "category": prompt.topic.name,
    }


def trl_message_row(rng: random.Random, prompt: Prompt, chosen: str, rejected: str) -> dict[str, Any]:
    """A TRL row whose prompt (sometimes after a system message) and responses are messages."""
    system = messages("system", SYSTEM_PROMPT) if rng.random() < 0.3 else []
    return {
        "prompt": system + messages("user", prompt.text),
        "chosen": messages("assistant", chosen),
        "rejected": messages("assistant", rejected),
        "category": prompt.topic.name,
    }


def with_irregular_whitespace(row: dict[str, Any]) -> dict[str, Any]:
    """The row with a trailing space on the prompt and a doubled and trailing space in chosen."""
    chosen = row["chosen"].replace(" ", "  ", 1) + " "
    return row | {"prompt": row["prompt"] + " ", "chosen": chosen}


def decomposed(row: dict[str, Any]) -> dict[str, Any]:
    """The row with every text in Unicode NFD."""
    return {key: unicodedata.normalize("NFD", value) for key, value in row.items()}


def bad_trl_row(rng: random.Random, prompt: Prompt, reason: Reason) -> bytes:
    """One TRL line that the ingester must quarantine for `reason`."""
    chosen, rejected = make_pair(rng, prompt.topic, prompt.entity, set())
    row = trl_row(prompt, chosen, rejected)
    response = rng.choice(["chosen", "rejected"])
    match reason:
        case Reason.MALFORMED:
            text = json.dumps(row, ensure_ascii=False)
            return text[: len(text) // 2].encode("utf-8")
        case Reason.INVALID_UTF8:
            row["chosen"] = f"{chosen} {NAIVE_NOTE}"
            return json_line(row).replace("ï".encode(), "ï".encode("latin-1"), 1)
        case Reason.MISSING_FIELD:
            del row[response]
        case Reason.NULL_FIELD:
            row[rng.choice(["prompt", "chosen", "rejected"])] = None
        case Reason.NON_STRING:
            row[response] = rng.choice([42, True, 3.5])
        case Reason.EMPTY_TEXT:
            row[response] = rng.choice(["", "   ", " \t "])
        case Reason.IDENTICAL_RESPONSES:
            row["rejected"] = rng.choice([chosen, chosen + "  "])
        case Reason.UNKNOWN_ROLE:
            row["prompt"] = messages("wizard", prompt.text)
        case _:
            raise ValueError(f"no TRL bad row for {reason}")
    return json_line(row)


def build_trl(
    rng: random.Random, prompts: Sequence[Prompt], bad: Sequence[Prompt]
) -> tuple[Built, TrlCounts]:
    """The TRL file: 5-7 pairs per prompt, a few as messages, ~8% duplicate lines, bad rows."""
    pairs = []
    for prompt in prompts:
        seen: set[frozenset[str]] = set()
        pairs += [
            (prompt, *make_pair(rng, prompt.topic, prompt.entity, seen)) for _ in range(rng.randint(5, 7))
        ]
    n_messages = max(1, round(TRL_MESSAGE_SHARE * len(pairs)))
    as_messages = set(rng.sample(range(len(pairs)), n_messages))
    rows = [
        trl_message_row(rng, p, c, r) if i in as_messages else trl_row(p, c, r)
        for i, (p, c, r) in enumerate(pairs)
    ]
    plain = [i for i in range(len(rows)) if i not in as_messages]
    accented = [i for i in plain if decomposed(rows[i]) != rows[i]]
    n_copies = round(len(rows) * TRL_DUPLICATE_SHARE / (1 - TRL_DUPLICATE_SHARE))
    unicode_src = rng.sample(accented, min(len(accented), max(1, round(0.2 * n_copies))))
    rest = [i for i in plain if i not in unicode_src]
    n_whitespace = round(0.3 * n_copies)
    other_src = rng.sample(rest, min(len(rest), n_copies - len(unicode_src)))
    whitespace_src, verbatim_src = other_src[:n_whitespace], other_src[n_whitespace:]
    lines = [json_line(row) for row in rows]
    copies = (
        [(i, lines[i]) for i in verbatim_src]
        + [(i, json_line(with_irregular_whitespace(rows[i]))) for i in whitespace_src]
        + [(i, json_line(decomposed(rows[i]))) for i in unicode_src]
    )
    bad_lines = [
        (reason, bad_trl_row(rng, p, reason)) for p, reason in zip(bad, BAD_ROWS[TRL_FILE], strict=True)
    ]
    ordered, bad_at = interleave(rng, lines, copies, bad_lines)
    counts = TrlCounts(n_messages, len(verbatim_src), len(whitespace_src), len(unicode_src))
    entry = sample_file(TRL_FILE, len(ordered), bad_at, len(copies), len(rows))
    return Built(jsonl_bytes(ordered), entry), counts


def vote(rng: random.Random, prompt: Prompt, x: str, y: str, winner: str | None, annotator: str) -> list[str]:
    """One CSV vote on {x, y} in random order; `winner` None is a tie."""
    a, b = (x, y) if rng.random() < 0.5 else (y, x)
    label = "tie" if winner is None else "a" if winner == a else "b"
    return [prompt.text, a, b, label, annotator, prompt.topic.name]


def votes_for_pair(
    rng: random.Random, prompt: Prompt, kind: str, seen: set[frozenset[str]]
) -> list[list[str]]:
    """The votes of one pair with the given voting pattern."""
    topic, entity = prompt.topic, prompt.entity
    winners: Sequence[str | None]
    if kind in ("conflict", "tie"):
        x, y = close_pair(rng, topic, entity, seen)
        winners = (x, y) if kind == "conflict" else (None,)
    else:
        x, y = make_pair(rng, topic, entity, seen)
        winners = {"single": (x,), "unanimous": (x, x, x), "majority": (x, x, y)}[kind]
    annotators = rng.sample(ANNOTATORS, len(winners))
    return [vote(rng, prompt, x, y, w, ann) for w, ann in zip(winners, annotators, strict=True)]


def flipped(row: list[str]) -> list[str]:
    """The same vote with the responses swapped and the label flipped."""
    prompt, a, b, label, annotator, category = row
    return [prompt, b, a, {"a": "b", "b": "a"}[label], annotator, category]


def bad_vote(rng: random.Random, prompt: Prompt, reason: Reason) -> list[str]:
    """One CSV vote that the ingester must quarantine for `reason`."""
    chosen, rejected = make_pair(rng, prompt.topic, prompt.entity, set())
    row = vote(rng, prompt, chosen, rejected, chosen, rng.choice(ANNOTATORS))
    match reason:
        case Reason.UNKNOWN_LABEL:
            row[3] = rng.choice(["c", "?", "both"])
        case Reason.EMPTY_TEXT:
            row[rng.choice([1, 2])] = rng.choice(["   ", " \t"])
        case Reason.IDENTICAL_RESPONSES:
            row[2] = row[1]
        case _:
            raise ValueError(f"no votes bad row for {reason}")
    return row


def csv_bytes(rows: Sequence[Sequence[str]]) -> bytes:
    """A CSV file's bytes: the votes header, then `rows`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(VOTES_HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def build_votes(
    rng: random.Random, prompts: Sequence[Prompt], bad: Sequence[Prompt]
) -> tuple[Built, VoteCounts]:
    """The votes file: 3-4 voted pairs per prompt, flipped duplicate votes, bad rows."""
    kinds = {kind: 0 for kind in VOTE_KINDS}
    rows: list[list[str]] = []
    for prompt in prompts:
        seen: set[frozenset[str]] = set()
        for kind in rng.choices(list(VOTE_KINDS), weights=list(VOTE_KINDS.values()), k=rng.randint(3, 4)):
            kinds[kind] += 1
            rows += votes_for_pair(rng, prompt, kind, seen)
    rng.shuffle(rows)
    decided = [i for i, row in enumerate(rows) if row[3] != "tie"]
    flip_src = rng.sample(decided, min(len(decided), max(1, round(VOTE_FLIP_SHARE * len(decided)))))
    copies = [(i, flipped(rows[i])) for i in flip_src]
    bad_rows = [
        (reason, bad_vote(rng, p, reason)) for p, reason in zip(bad, BAD_ROWS[VOTES_FILE], strict=True)
    ]
    ordered, bad_at = interleave(rng, rows, copies, bad_rows)
    counts = VoteCounts(
        single_vote_pairs=kinds["single"],
        unanimous_pairs=kinds["unanimous"],
        majority_pairs=kinds["majority"],
        conflict_pairs=kinds["conflict"],
        tie_pairs=kinds["tie"],
        flipped_duplicates=len(copies),
    )
    entry = sample_file(VOTES_FILE, len(ordered), bad_at, len(copies), len(rows))
    return Built(gzipped(csv_bytes(ordered)), entry), counts


def ranking_row(rng: random.Random, prompt: Prompt) -> dict[str, Any]:
    """A ranking of 3 to 5 responses to `prompt`."""
    responses, ranks = ranked_responses(rng, prompt, rng.randint(3, 5))
    return {"prompt": prompt.text, "responses": responses, "ranks": ranks, "category": prompt.topic.name}


def bad_ranking(rng: random.Random, prompt: Prompt, reason: Reason) -> bytes:
    """One rankings line that the ingester must quarantine for `reason`."""
    row = ranking_row(rng, prompt)
    match reason:
        case Reason.MALFORMED:
            text = json.dumps(row, ensure_ascii=False)
            return text[: len(text) // 2].encode("utf-8")
        case Reason.NON_STRING:
            row["responses"][rng.randrange(len(row["responses"]))] = 42
        case Reason.INVALID_RANKS:
            row["ranks"] = row["ranks"][:-1]
        case _:
            raise ValueError(f"no rankings bad row for {reason}")
    return json_line(row)


def build_rankings(rng: random.Random, prompts: Sequence[Prompt], bad: Sequence[Prompt]) -> Built:
    """The rankings file: one ranking per prompt, bad rows."""
    rows = [ranking_row(rng, prompt) for prompt in prompts]
    bad_lines = [
        (reason, bad_ranking(rng, p, reason)) for p, reason in zip(bad, BAD_ROWS[RANKINGS_FILE], strict=True)
    ]
    ordered, bad_at = interleave(rng, [json_line(row) for row in rows], [], bad_lines)
    comparisons = sum(len(row["ranks"]) * (len(row["ranks"]) - 1) // 2 for row in rows)
    return Built(jsonl_bytes(ordered), sample_file(RANKINGS_FILE, len(ordered), bad_at, 0, comparisons))


def conversation(rng: random.Random, prompt: Prompt) -> tuple[str, Prompt]:
    """An HH transcript prefix ending in "\\n\\nAssistant:" and the question it ends with.

    A multi-turn prefix answers the prompt first, then asks about another entity.
    """
    if rng.random() >= HH_MULTI_TURN_SHARE:
        return f"\n\nHuman: {prompt.text}\n\nAssistant:", prompt
    topic = prompt.topic
    entity = rng.choice([e for e in topic.entities if e != prompt.entity])
    follow_up = Prompt(topic, entity, rng.choice(FOLLOW_UPS).format(entity=entity))
    first = answer(rng, topic, prompt.entity, rng.randint(1, 2))
    return (
        f"\n\nHuman: {prompt.text}\n\nAssistant: {first}\n\nHuman: {follow_up.text}\n\nAssistant:",
        follow_up,
    )


def bad_transcript(rng: random.Random, prompt: Prompt, reason: Reason) -> bytes:
    """One HH line that the ingester must quarantine for `reason`."""
    prefix, last = conversation(rng, prompt)
    chosen, rejected = make_pair(rng, last.topic, last.entity, set())
    row = {"chosen": f"{prefix} {chosen}", "rejected": f"{prefix} {rejected}"}
    match reason:
        case Reason.PROMPT_MISMATCH:
            row["rejected"] = f"\n\nHuman: {last.text} Keep it short.\n\nAssistant: {rejected}"
        case Reason.MISSING_FIELD:
            del row["rejected"]
        case Reason.EMPTY_TEXT:
            row["rejected"] = prefix + rng.choice(["", " "])
        case _:
            raise ValueError(f"no HH bad row for {reason}")
    return json_line(row)


def build_hh(rng: random.Random, prompts: Sequence[Prompt], bad: Sequence[Prompt]) -> tuple[Built, int]:
    """The HH file: 2-4 records per conversation, some multi-turn; and its multi-turn count."""
    lines: list[bytes] = []
    multi_turn = 0
    for prompt in prompts:
        prefix, last = conversation(rng, prompt)
        seen: set[frozenset[str]] = set()
        n = rng.randint(2, 4)
        multi_turn += n if last is not prompt else 0
        for _ in range(n):
            chosen, rejected = make_pair(rng, last.topic, last.entity, seen)
            lines.append(json_line({"chosen": f"{prefix} {chosen}", "rejected": f"{prefix} {rejected}"}))
    bad_lines = [
        (reason, bad_transcript(rng, p, reason)) for p, reason in zip(bad, BAD_ROWS[HH_FILE], strict=True)
    ]
    ordered, bad_at = interleave(rng, lines, [], bad_lines)
    entry = sample_file(HH_FILE, len(ordered), bad_at, 0, len(lines))
    return Built(gzipped(jsonl_bytes(ordered)), entry), multi_turn


def split_prompts(prompts: Sequence[Prompt]) -> dict[str, list[Prompt]]:
    """The prompts divided among the files in the proportions of FILE_SHARES."""
    bounds = [0.0]
    for share in FILE_SHARES.values():
        bounds.append(bounds[-1] + share)
    cuts = [round(b * len(prompts)) for b in bounds]
    return {name: list(prompts[lo:hi]) for name, lo, hi in zip(FILE_SHARES, cuts[:-1], cuts[1:], strict=True)}


def write_sample(out_dir: Path, *, seed: int = 0, n_prompts: int = 400) -> SampleManifest:
    """Write the four sample files under `out_dir` (atomically) and return what they hold."""
    rng = random.Random(seed)
    prompts = build_prompts(rng, n_prompts)
    bad_iter = iter(prompts[:N_BAD_ROWS])
    bad = {name: [next(bad_iter) for _ in reasons] for name, reasons in BAD_ROWS.items()}
    good = split_prompts(prompts[N_BAD_ROWS:])
    trl, trl_counts = build_trl(rng, good[TRL_FILE], bad[TRL_FILE])
    votes, vote_counts = build_votes(rng, good[VOTES_FILE], bad[VOTES_FILE])
    rankings = build_rankings(rng, good[RANKINGS_FILE], bad[RANKINGS_FILE])
    hh, multi_turn = build_hh(rng, good[HH_FILE], bad[HH_FILE])
    built = (trl, votes, rankings, hh)
    out_dir.mkdir(parents=True, exist_ok=True)
    for item in built:
        with replacing(out_dir / item.file.name) as tmp:
            tmp.write_bytes(item.data)
    return SampleManifest(
        seed=seed,
        n_prompts=n_prompts,
        files=tuple(out_dir / item.file.name for item in built),
        contents=tuple(item.file for item in built),
        trl=trl_counts,
        votes=vote_counts,
        multi_turn_transcripts=multi_turn,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write the sample and print its manifest as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m rmcore.data.sample", description="Write the built-in sample of raw label files."
    )
    parser.add_argument("out_dir", type=Path, help="folder to write the sample files into")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--prompts", type=int, default=400, help="distinct prompts (default 400)")
    args = parser.parse_args(argv)
    manifest = write_sample(args.out_dir, seed=args.seed, n_prompts=args.prompts)
    json.dump(manifest.as_dict(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
