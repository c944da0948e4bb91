//! The Spanish lexicon, written the same way as the English one. Words
//! are read without accents, and a clitic joined to its verb is moved in
//! front of it ([`super::tokens`]), so `me ... matar` covers "me quiero
//! matar", "quiero matarme" and "me voy a matar"; `se` in the same place
//! marks a third person ("se quiere matar").

use super::Construct::{
    Absence, Attempt, Burden, DeathWish, Farewell, Finality, Hopelessness, Immediacy, Intent,
    Means, Readiness, SelfHarm,
};
use super::lexicon::{Entry, Strength::Alone as A, Strength::Paired as P};

pub(crate) const ES: &[Entry] = &[
    // Death wish.
    ("me|se|te ... morir|muero|muera|mueran", DeathWish, A),
    ("quiero|quiere|quisiera|queria morir", DeathWish, A),
    (
        "no despertar / no despertara / no despierte / nunca despertar / despertar nunca",
        DeathWish,
        A,
    ),
    ("nunca hubiera nacido / no haber nacido", DeathWish, A),
    ("da igual si me|se muero", DeathWish, A),
    ("me|se|te lleve|lleva|llevara|atropelle", DeathWish, A),
    (
        "desaparecer para siempre / quiero desaparecer / quisiera desaparecer",
        DeathWish,
        A,
    ),
    ("cansada|cansado de vivir", DeathWish, A),
    ("no quiero|quiere|queria estar aqui", DeathWish, A),
    ("no quiero|quiere|queria vivir|seguir", DeathWish, A),
    ("ya no quiero|quiere|queria vivir", DeathWish, A),
    ("mejor muerto|muerta", DeathWish, A),
    (
        "estar con mi ... alla / estar con mi ... otra vez",
        DeathWish,
        P,
    ),
    ("alla arriba", Finality, P),
    ("ir con tu|mi abuelo|abuela|hijo|esposo", Intent, A),
    ("se me pare el corazon", DeathWish, A),
    ("que pase lo que tenga que pasar", DeathWish, A),
    // Intent.
    (
        "me|se|te ... matar|mato|mata|suicidar|suicido|suicide",
        Intent,
        A,
    ),
    ("suicidio|suicidarme|suicidarse", Intent, A),
    (
        "quitar|quito|quite|quitarme|quitarse|quitarte la vida",
        Intent,
        A,
    ),
    ("me|se ... quitar|quito|quite la vida", Intent, A),
    ("acabar|terminar con todo|mi vida", Intent, A),
    (
        "acabar con todo / terminar con mi vida / acabar con mi vida",
        Intent,
        A,
    ),
    ("se acaba todo", Intent, A),
    (
        "hoy lo hago / lo voy a hacer / ya decidi / lo decidi",
        Intent,
        A,
    ),
    ("tengo un plan", Intent, A),
    ("no estoy a salvo", Intent, A),
    ("me ... aventar|tirar", Intent, A),
    ("me ... aventar", Intent, A),
    (
        "no aguanto mas / no puedo mas / ya no puedo / ya no aguanto",
        Hopelessness,
        A,
    ),
    (
        "ya no tengo esperanza / nada va a mejorar / nada mejora / no tiene sentido / para que sigo / para que seguir / xq seguir / porque seguir / nd tiene sentido / nada tiene sentido",
        Hopelessness,
        A,
    ),
    ("matar|matarme|suicidarme", Intent, A),
    // Self-harm.
    (
        "me|se ... corte|corto|cortar|cortaba|corta|cortando",
        SelfHarm,
        A,
    ),
    ("cortarme|cortarse|ganas de cortarme", SelfHarm, A),
    (
        "me|se ... queme|quemo|quemar|pegando|pego|pegue",
        SelfHarm,
        A,
    ),
    ("hacerme dano|hacerme daño", SelfHarm, A),
    ("no para de sangrar / mucha sangre", Attempt, A),
    ("muy hondo", Attempt, A),
    // Means and readiness.
    (
        "tengo / junte / compre / guardando / guardo / contadas / tengo todas / ya tengo / recojo / la tengo",
        Readiness,
        P,
    ),
    (
        "debajo de la almohada / en mi cuarto / en el closet / aqui / en la bolsa / en una bolsa / =lista / =listo / ya esta",
        Readiness,
        P,
    ),
    ("donde guarda", Readiness, P),
    (
        "para no despertar / es mortal / cuanto|cuantas ... para",
        Readiness,
        P,
    ),
    (
        "que tan alto / esta alto / suficiente / ya fui a verlo",
        Readiness,
        P,
    ),
    ("donde me parar / donde pararme", Readiness, A),
    ("=todas", Readiness, P),
    (
        "no quiero despertar / aviento|tiro por|del|al / se lo lleve / me lleve",
        DeathWish,
        A,
    ),
    ("tiene|tengo la pistola|arma", Means, A),
    ("carro|auto|coche prendido|encendido", Means, A),
    ("garaje ... cerrada|prendido", Means, A),
    ("veneno para ratas", Means, A),
    (
        "esta noche / hoy / manana / este fin de semana / el sabado / el viernes / ahorita / pronto",
        Immediacy,
        P,
    ),
    (
        "estoy en la azotea / en el puente / en el baño / en el bano",
        Readiness,
        P,
    ),
    // Attempt.
    (
        "me tome|trague|meti ... todas|todo|todos|cloro|como|botella / tome todas|todo|todos / me he tomado todas|todo",
        Attempt,
        A,
    ),
    ("me tome el cloro / tome # pastillas", Attempt, A),
    (
        "lo intente / intente / intento quitarme / intento / intento quitarse",
        Attempt,
        A,
    ),
    ("ya lo hice", Attempt, A),
    ("iba a hacerlo", Attempt, A),
    ("la soga se rompio / se rompio la soga", Attempt, A),
    ("estuve en el puente", Attempt, A),
    ("estoy en el carro", Attempt, P),
    (
        "me ... tomar la botella / me ... tomar todas / me ... tomar hasta / me ... meter todo",
        Attempt,
        A,
    ),
    ("tomar|tomando hasta / mezclar", Attempt, A),
    ("a proposito", Readiness, P),
    ("fentanilo", Means, P),
    // Farewell.
    (
        "ultimo mensaje / la despedida / adios para siempre",
        Farewell,
        A,
    ),
    ("adios / adios a todos / adios grupo", Farewell, P),
    ("gracias por todo", Farewell, P),
    ("=perdonen|=perdonenme", Farewell, P),
    ("los quiero mucho / la quiero / que la quiero", Farewell, P),
    ("cuiden a mi / cuidenme a mi / cuiden mi", Farewell, A),
    (
        "=regale / le =regale / le di mi / deje cartas / deje todo en orden / todo en orden / escribi la carta / no fue su culpa",
        Farewell,
        A,
    ),
    (
        "no me van a ver / no las voy a necesitar / ya no lo voy a / no voy a poder",
        Finality,
        P,
    ),
    ("cuidense", Farewell, P),
    ("para siempre / nunca mas / ya no", Finality, P),
    // Burden.
    (
        "mejor sin mi / mejor sin una / mejor si yo / mas facil para todos / mas feliz si / seria mejor",
        Burden,
        A,
    ),
    ("una carga / un estorbo", Burden, A),
    (
        "nadie se daria cuenta / nadie me va a extranar / nadie me extrañaria / nadie se daria",
        Burden,
        A,
    ),
    ("seguro de vida", Absence, P),
    (
        "estaria mejor / estarian mejor / van a estar mejor",
        Burden,
        P,
    ),
    ("si yo no existiera / si me muero", Absence, P),
];
