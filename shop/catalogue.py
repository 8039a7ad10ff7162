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

P = ProductSeed
PRODUCTS: dict[str, list[ProductSeed]] = {
    "hk": [
        P("HK-EGGROLL", "Butter egg rolls, tin of 24", "牛油雞蛋卷（24條罐裝）",
          "Rolled by hand each morning at a family bakery in Causeway Bay. Crisp, buttery, not too sweet.",
          "銅鑼灣家庭餅店每朝人手捲製，香脆牛油味，甜度適中。",
          Decimal("168.00"), "ER", "#E9B949", "rings"),
        P("HK-MILKTEA", "Milk tea set with cotton strainer", "港式奶茶套裝（連絲襪茶袋）",
          "A blend of four Ceylon teas, 500 g, with the cotton strainer and evaporated-milk guide.",
          "四款錫蘭紅茶拼配（500克），附絲襪茶袋及淡奶沖調指南。",
          Decimal("238.00"), "MT", "#9C6B4E", "cup"),
        P("HK-OCTOPUS", "Leather Octopus card holder", "真皮八達通卡套",
          "Full-grain leather with a key ring. Tap through the MTR gates without taking the card out.",
          "全粒面真皮，附鑰匙圈；毋須取出八達通即可拍卡入閘。",
          Decimal("88.00"), "OC", "#2F6F8F", "card"),
        P("HK-XOSAUCE", "XO sauce, 200 g jar", "XO醬（200克）",
          "Dried scallop, Jinhua ham and chilli, slow-cooked in small batches. Keeps six months unopened.",
          "瑤柱、金華火腿及辣椒小批慢煮。未開封可存放六個月。",
          Decimal("198.00"), "XO", "#B5452F", "jar"),
        P("HK-MOONCAKE", "Custard mooncakes, box of 8", "奶黃月餅（8個裝）",
          "Salted egg yolk custard in a soft crust. Order early for the Mid-Autumn Festival.",
          "鹹蛋黃奶黃餡配軟滑餅皮。中秋節前請及早訂購。",
          Decimal("328.00"), "MC", "#D98E32", "flower"),
        P("HK-WIFECAKE", "Wife cakes, box of 6", "老婆餅（6件裝）",
          "Flaky pastry filled with winter melon paste and toasted sesame.",
          "酥皮包裹冬瓜蓉及烘香芝麻。",
          Decimal("78.00"), "WC", "#C9A66B", "disc"),
        P("HK-TRAM", "Ding Ding tram model, 1:76", "叮叮電車模型（1:76）",
          "Die-cast model of a Hong Kong double-deck tram, with a display base.",
          "香港雙層電車合金模型，附展示底座。",
          Decimal("268.00"), "TR", "#3E7D4F", "tram"),
        P("HK-FERRYMUG", "Harbour ferry enamel mug", "渡海小輪搪瓷杯",
          "Green-and-white enamel mug, 350 ml, inspired by the cross-harbour ferries.",
          "綠白色搪瓷杯（350毫升），靈感來自維港渡輪。",
          Decimal("98.00"), "FM", "#4C8C6B", "waves"),
        P("HK-TOTE", "Red-white-blue tote bag", "紅白藍手提袋",
          "The classic nylon stripe, made into a sturdy everyday tote with inner pocket.",
          "經典紅白藍膠布，製成耐用日常手提袋，附內袋。",
          Decimal("68.00"), "RB", "#C8423B", "stripes"),
        P("HK-PEEL", "Aged tangerine peel, 10 years, 37.5 g", "十年陳皮（37.5克）",
          "Sun-dried Xinhui peel for soups and red bean dessert.",
          "新會陳皮，生曬十年，煲湯及煮紅豆沙皆宜。",
          Decimal("388.00"), "TP", "#C0622F", "disc"),
        P("HK-STEAMER", "Bamboo dim sum steamer, two tiers", "竹蒸籠（兩層連蓋）",
          "20 cm hand-woven bamboo steamer with lid, for siu mai and har gow at home.",
          "20厘米人手編織竹蒸籠連蓋，在家蒸燒賣蝦餃。",
          Decimal("128.00"), "DS", "#A88B5A", "rings"),
        P("HK-NEON", "Neon sign print, A3", "霓虹招牌版畫（A3）",
          "Riso print of a Mong Kok street at night, on 200 g paper.",
          "旺角夜街景孔版印刷，200克紙。",
          Decimal("150.00"), "NE", "#5B3F8C", "neon"),
    ],
    "mo": [
        P("MO-ALMOND", "Almond cookies, tin of 30", "杏仁餅（30件罐裝）",
          "Charcoal-roasted almond cookies, crumbly and fragrant, from a bakery on Rua do Cunha.",
          "官也街餅家炭燒杏仁餅，鬆化香口。",
          Decimal("128.00"), "AC", "#D4A35A", "disc"),
        P("MO-EGGTART", "Portuguese egg tarts, box of 6", "葡式蛋撻（6個裝）",
          "Caramelised custard in puff pastry, baked to order in Coloane. Collect within the day.",
          "路環即日焗製，焦糖蛋漿配酥皮。請即日取貨。",
          Decimal("72.00"), "ET", "#E2A93B", "flower"),
        P("MO-PORKCHOP", "Pork chop bun voucher, 2 buns", "豬扒包換領券（2個）",
          "Redeem at the Taipa counter for two freshly fried pork chop buns.",
          "憑券於氹仔店換領即炸豬扒包兩個。",
          Decimal("98.00"), "PB", "#B7733E", "ticket"),
        P("MO-JERKY", "Honey pork jerky, 250 g", "蜜汁豬肉乾（250克）",
          "Grilled over charcoal and glazed with honey. Vacuum-packed.",
          "炭火烤製，蜜汁上色，真空包裝。",
          Decimal("118.00"), "PJ", "#9E3B2E", "stripes"),
        P("MO-PEANUT", "Peanut candy, box of 12", "花生糖（12件裝）",
          "Crunchy roasted peanuts set in maltose, cut in bars.",
          "香脆烘花生配麥芽糖，切條包裝。",
          Decimal("58.00"), "PC", "#C49A5B", "rings"),
        P("MO-SERRADURA", "Serradura pudding voucher, 2 cups", "木糠布甸換領券（2杯）",
          "Whipped cream layered with Marie biscuit crumbs. Redeem at any of our cafés.",
          "忌廉與瑪利餅碎層層相間。可於任何分店換領。",
          Decimal("60.00"), "SP", "#A67C52", "ticket"),
        P("MO-AZULEJO", "Azulejo tile coasters, set of 4", "葡國花磚杯墊（4件）",
          "Glazed ceramic coasters in the blue-and-white patterns of Senado Square.",
          "藍白釉面陶瓷杯墊，圖案取材自議事亭前地。",
          Decimal("168.00"), "AZ", "#2E5C9A", "tile"),
        P("MO-POSTCARDS", "Ruins of St. Paul's postcard set", "大三巴明信片套裝",
          "Eight watercolour postcards of the old town, from the Ruins to the A-Ma Temple.",
          "八張水彩明信片，由大三巴到媽閣廟。",
          Decimal("38.00"), "RP", "#7A8F5C", "arch"),
        P("MO-PHOENIX", "Seaweed phoenix rolls, tin of 20", "紫菜鳳凰卷（20條罐裝）",
          "Thin egg rolls with seaweed and pork floss.",
          "薄脆蛋卷夾紫菜及肉鬆。",
          Decimal("88.00"), "PR", "#3F6B4A", "rings"),
        P("MO-GINGER", "Ginger candy, 200 g", "薑糖（200克）",
          "Soft ginger candy with a warm bite, wrapped one by one.",
          "軟身薑糖，微辣回甘，獨立包裝。",
          Decimal("48.00"), "GC", "#D9B44A", "disc"),
        P("MO-MINCHI", "Macanese minchi kit for two", "澳門免治煮食套裝（兩人份）",
          "Spice mix, soy blend and a recipe card for the Macanese home dish. Add rice and an egg.",
          "香料、醬汁及食譜卡，炮製土生葡人家常菜；另備白飯及煎蛋。",
          Decimal("108.00"), "MK", "#8C5A3C", "cup"),
        P("MO-SARDINES", "Portuguese sardines, 3 tins", "葡國沙甸魚（3罐）",
          "Sardines in olive oil from a century-old cannery, in gift paper.",
          "百年罐頭廠橄欖油沙甸魚，禮品紙包裝。",
          Decimal("138.00"), "SA", "#2F7F86", "waves"),
    ],
}
