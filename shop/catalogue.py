# ruff: noqa: RUF001  (Chinese text uses full-width punctuation)
"""The demo catalogue: two storefronts and their products, bilingual, with the look of each product tile.

`shop_seed` writes it to the database; `shop_images` draws the tiles into shop/static/shop/products/.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class StorefrontSeed:
    code: str
    name: str
    name_zh: str
    currency: str


@dataclass(frozen=True)
class ProductSeed:
    sku: str
    name: str
    name_zh: str
    description: str
    description_zh: str
    price: Decimal
    initials: str
    colour: str  # tile background
    shape: str  # one of shop.product_art.SHAPES

    @property
    def image(self) -> str:
        return f"shop/products/{self.sku}.svg"


STOREFRONTS = [
    StorefrontSeed(code="hk", name="Hong Kong Store", name_zh="香港店", currency="HKD"),
    StorefrontSeed(code="mo", name="Macau Store", name_zh="澳門店", currency="MOP"),
]

PRODUCTS: dict[str, list[ProductSeed]] = {
    "hk": [
        ProductSeed(
            sku="HK-EGGROLL",
            name="Butter egg rolls, tin of 24",
            name_zh="牛油雞蛋卷（24條罐裝）",
            description="Rolled by hand every morning at a Causeway Bay family bakery: crisp, buttery, not too sweet.",
            description_zh="銅鑼灣家庭餅店每朝人手捲製，香脆牛油味，甜度適中。",
            price=Decimal("168.00"),
            initials="ER",
            colour="#E9B949",
            shape="rings",
        ),
        ProductSeed(
            sku="HK-MILKTEA",
            name="Milk tea set with cotton strainer",
            name_zh="港式奶茶套裝（連絲襪茶袋）",
            description="A blend of four Ceylon teas, 500 g, with the cotton strainer and evaporated-milk guide.",
            description_zh="四款錫蘭紅茶拼配（500克），附絲襪茶袋及淡奶沖調指南。",
            price=Decimal("238.00"),
            initials="MT",
            colour="#9C6B4E",
            shape="cup",
        ),
        ProductSeed(
            sku="HK-OCTOPUS",
            name="Leather Octopus card holder",
            name_zh="真皮八達通卡套",
            description="Full-grain leather with a key ring. Tap through the MTR gates without taking the card out.",
            description_zh="全粒面真皮，附鑰匙圈；毋須取出八達通即可拍卡入閘。",
            price=Decimal("88.00"),
            initials="OC",
            colour="#2F6F8F",
            shape="card",
        ),
        ProductSeed(
            sku="HK-XOSAUCE",
            name="XO sauce, 200 g jar",
            name_zh="XO醬（200克）",
            description="Dried scallop, Jinhua ham and chilli, slow-cooked in small batches. Keeps 6 months unopened.",
            description_zh="瑤柱、金華火腿及辣椒小批慢煮。未開封可存放六個月。",
            price=Decimal("198.00"),
            initials="XO",
            colour="#B5452F",
            shape="jar",
        ),
        ProductSeed(
            sku="HK-MOONCAKE",
            name="Custard mooncakes, box of 8",
            name_zh="奶黃月餅（8個裝）",
            description="Salted egg yolk custard in a soft crust. Order early for the Mid-Autumn Festival.",
            description_zh="鹹蛋黃奶黃餡配軟滑餅皮。中秋節前請及早訂購。",
            price=Decimal("328.00"),
            initials="MC",
            colour="#D98E32",
            shape="flower",
        ),
        ProductSeed(
            sku="HK-WIFECAKE",
            name="Wife cakes, box of 6",
            name_zh="老婆餅（6件裝）",
            description="Flaky pastry filled with winter melon paste and toasted sesame.",
            description_zh="酥皮包裹冬瓜蓉及烘香芝麻。",
            price=Decimal("78.00"),
            initials="WC",
            colour="#C9A66B",
            shape="disc",
        ),
        ProductSeed(
            sku="HK-TRAM",
            name="Ding Ding tram model, 1:76",
            name_zh="叮叮電車模型（1:76）",
            description="Die-cast model of a Hong Kong double-deck tram, with a display base.",
            description_zh="香港雙層電車合金模型，附展示底座。",
            price=Decimal("268.00"),
            initials="TR",
            colour="#3E7D4F",
            shape="tram",
        ),
        ProductSeed(
            sku="HK-FERRYMUG",
            name="Harbour ferry enamel mug",
            name_zh="渡海小輪搪瓷杯",
            description="Green-and-white enamel mug, 350 ml, inspired by the cross-harbour ferries.",
            description_zh="綠白色搪瓷杯（350毫升），靈感來自維港渡輪。",
            price=Decimal("98.00"),
            initials="FM",
            colour="#4C8C6B",
            shape="waves",
        ),
        ProductSeed(
            sku="HK-TOTE",
            name="Red-white-blue tote bag",
            name_zh="紅白藍手提袋",
            description="The classic nylon stripe, made into a sturdy everyday tote with inner pocket.",
            description_zh="經典紅白藍膠布，製成耐用日常手提袋，附內袋。",
            price=Decimal("68.00"),
            initials="RB",
            colour="#C8423B",
            shape="stripes",
        ),
        ProductSeed(
            sku="HK-PEEL",
            name="Aged tangerine peel, 10 years, 37.5 g",
            name_zh="十年陳皮（37.5克）",
            description="Sun-dried Xinhui peel for soups and red bean dessert.",
            description_zh="新會陳皮，生曬十年，煲湯及煮紅豆沙皆宜。",
            price=Decimal("388.00"),
            initials="TP",
            colour="#C0622F",
            shape="disc",
        ),
        ProductSeed(
            sku="HK-STEAMER",
            name="Bamboo dim sum steamer, two tiers",
            name_zh="竹蒸籠（兩層連蓋）",
            description="20 cm hand-woven bamboo steamer with lid, for siu mai and har gow at home.",
            description_zh="20厘米人手編織竹蒸籠連蓋，在家蒸燒賣蝦餃。",
            price=Decimal("128.00"),
            initials="DS",
            colour="#A88B5A",
            shape="rings",
        ),
        ProductSeed(
            sku="HK-NEON",
            name="Neon sign print, A3",
            name_zh="霓虹招牌版畫（A3）",
            description="Riso print of a Mong Kok street at night, on 200 g paper.",
            description_zh="旺角夜街景孔版印刷，200克紙。",
            price=Decimal("150.00"),
            initials="NE",
            colour="#5B3F8C",
            shape="neon",
        ),
    ],
    "mo": [
        ProductSeed(
            sku="MO-ALMOND",
            name="Almond cookies, tin of 30",
            name_zh="杏仁餅（30件罐裝）",
            description="Charcoal-roasted almond cookies, crumbly and fragrant, from a bakery on Rua do Cunha.",
            description_zh="官也街餅家炭燒杏仁餅，鬆化香口。",
            price=Decimal("128.00"),
            initials="AC",
            colour="#D4A35A",
            shape="disc",
        ),
        ProductSeed(
            sku="MO-EGGTART",
            name="Portuguese egg tarts, box of 6",
            name_zh="葡式蛋撻（6個裝）",
            description="Caramelised custard in puff pastry, baked to order in Coloane. Collect within the day.",
            description_zh="路環即日焗製，焦糖蛋漿配酥皮。請即日取貨。",
            price=Decimal("72.00"),
            initials="ET",
            colour="#E2A93B",
            shape="flower",
        ),
        ProductSeed(
            sku="MO-PORKCHOP",
            name="Pork chop bun voucher, 2 buns",
            name_zh="豬扒包換領券（2個）",
            description="Redeem at the Taipa counter for two freshly fried pork chop buns.",
            description_zh="憑券於氹仔店換領即炸豬扒包兩個。",
            price=Decimal("98.00"),
            initials="PB",
            colour="#B7733E",
            shape="ticket",
        ),
        ProductSeed(
            sku="MO-JERKY",
            name="Honey pork jerky, 250 g",
            name_zh="蜜汁豬肉乾（250克）",
            description="Grilled over charcoal and glazed with honey. Vacuum-packed.",
            description_zh="炭火烤製，蜜汁上色，真空包裝。",
            price=Decimal("118.00"),
            initials="PJ",
            colour="#9E3B2E",
            shape="stripes",
        ),
        ProductSeed(
            sku="MO-PEANUT",
            name="Peanut candy, box of 12",
            name_zh="花生糖（12件裝）",
            description="Crunchy roasted peanuts set in maltose, cut in bars.",
            description_zh="香脆烘花生配麥芽糖，切條包裝。",
            price=Decimal("58.00"),
            initials="PC",
            colour="#C49A5B",
            shape="rings",
        ),
        ProductSeed(
            sku="MO-SERRADURA",
            name="Serradura pudding voucher, 2 cups",
            name_zh="木糠布甸換領券（2杯）",
            description="Whipped cream layered with Marie biscuit crumbs. Redeem at any of our cafés.",
            description_zh="忌廉與瑪利餅碎層層相間。可於任何分店換領。",
            price=Decimal("60.00"),
            initials="SP",
            colour="#A67C52",
            shape="ticket",
        ),
        ProductSeed(
            sku="MO-AZULEJO",
            name="Azulejo tile coasters, set of 4",
            name_zh="葡國花磚杯墊（4件）",
            description="Glazed ceramic coasters in the blue-and-white patterns of Senado Square.",
            description_zh="藍白釉面陶瓷杯墊，圖案取材自議事亭前地。",
            price=Decimal("168.00"),
            initials="AZ",
            colour="#2E5C9A",
            shape="tile",
        ),
        ProductSeed(
            sku="MO-POSTCARDS",
            name="Ruins of St. Paul's postcard set",
            name_zh="大三巴明信片套裝",
            description="Eight watercolour postcards of the old town, from the Ruins to the A-Ma Temple.",
            description_zh="八張水彩明信片，由大三巴到媽閣廟。",
            price=Decimal("38.00"),
            initials="RP",
            colour="#7A8F5C",
            shape="arch",
        ),
        ProductSeed(
            sku="MO-PHOENIX",
            name="Seaweed phoenix rolls, tin of 20",
            name_zh="紫菜鳳凰卷（20條罐裝）",
            description="Thin egg rolls with seaweed and pork floss.",
            description_zh="薄脆蛋卷夾紫菜及肉鬆。",
            price=Decimal("88.00"),
            initials="PR",
            colour="#3F6B4A",
            shape="rings",
        ),
        ProductSeed(
            sku="MO-GINGER",
            name="Ginger candy, 200 g",
            name_zh="薑糖（200克）",
            description="Soft ginger candy with a warm bite, wrapped one by one.",
            description_zh="軟身薑糖，微辣回甘，獨立包裝。",
            price=Decimal("48.00"),
            initials="GC",
            colour="#D9B44A",
            shape="disc",
        ),
        ProductSeed(
            sku="MO-MINCHI",
            name="Macanese minchi kit for two",
            name_zh="澳門免治煮食套裝（兩人份）",
            description="Spice mix, soy blend and a recipe card for the Macanese home dish. Add rice and an egg.",
            description_zh="香料、醬汁及食譜卡，炮製土生葡人家常菜；另備白飯及煎蛋。",
            price=Decimal("108.00"),
            initials="MK",
            colour="#8C5A3C",
            shape="cup",
        ),
        ProductSeed(
            sku="MO-SARDINES",
            name="Portuguese sardines, 3 tins",
            name_zh="葡國沙甸魚（3罐）",
            description="Sardines in olive oil from a century-old cannery, in gift paper.",
            description_zh="百年罐頭廠橄欖油沙甸魚，禮品紙包裝。",
            price=Decimal("138.00"),
            initials="SA",
            colour="#2F7F86",
            shape="waves",
        ),
    ],
}
