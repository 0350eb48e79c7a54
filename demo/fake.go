package demo

import (
	"fmt"
	"strings"

	casev1 "github.com/koers-io/koers/proto/koers/case/v1"
)

// The synthetic vocabulary of the demo. Every organisation, agency and
// family name is made up and reads as made up ("Fictief", "Voorbeeld",
// "Nep" is Dutch for fake), e-mail addresses are on example.org, a domain
// reserved for examples, and telephone numbers use the 0000 block no
// subscriber has; nothing here can point at a real person.

// organisationTemplates are the employers of a tenant, with the weight of
// how many cases each sends.
var organisationTemplates = []Organisation{
	{ID: "zorggroep-fictief", Name: "Zorggroep Fictief", Departments: []string{"Verpleging", "Facilitair bedrijf", "ICT", "HR", "Financiën"}, weight: 6},
	{ID: "gemeente-voorbeeldstad", Name: "Gemeente Voorbeeldstad", Departments: []string{"Burgerzaken", "Sociaal domein", "Openbare ruimte", "Bedrijfsvoering"}, weight: 5},
	{ID: "proefbank", Name: "Proefbank N.V.", Departments: []string{"Particulieren", "Risk", "IT operations", "Compliance"}, weight: 5},
	{ID: "demo-logistiek", Name: "Demo Logistiek B.V.", Departments: []string{"Magazijn", "Transportplanning", "Klantenservice"}, weight: 4},
	{ID: "fictum-onderwijsgroep", Name: "Fictum Onderwijsgroep", Departments: []string{"Docenten", "Onderwijsondersteuning", "Staf"}, weight: 3},
	{ID: "verzonnen-verzekeringen", Name: "Verzonnen Verzekeringen", Departments: []string{"Schadebehandeling", "Acceptatie", "Klantcontact"}, weight: 3},
	{ID: "nepstra-techniek", Name: "Nepstra Techniek", Departments: []string{"Productie", "Engineering", "Kwaliteit"}, weight: 2},
	{ID: "voorbeeld-retail", Name: "Voorbeeld Retail", Departments: []string{"Winkels", "Distributiecentrum", "Hoofdkantoor"}, weight: 2},
}

// agencyIDs are the re-integration agencies a tenant works with.
var agencyIDs = []string{"reintegratie-fictief", "werkfit-demo", "proef-loopbaanpartners", "nepstra-reintegratie"}

// coachNames are the first names in the coaches' subject IDs.
var coachNames = []string{
	"anouk", "bram", "charlotte", "dennis", "esther", "floris", "gerda", "hamza",
	"ilse", "jeroen", "karin", "lars", "miriam", "nadia", "olaf", "petra",
	"quinten", "roos", "sander", "tamara", "umut", "vera", "wouter", "yasmina",
}

var givenNames = []string{
	"Anna", "Daan", "Sanne", "Mohammed", "Fatima", "Lucas", "Emma", "Noah",
	"Lotte", "Sem", "Julia", "Finn", "Sophie", "Levi", "Eva", "Milan",
	"Noor", "Thijs", "Yara", "Jesse", "Iris", "Bas", "Fleur", "Ruben",
	"Mila", "Koen", "Zoë", "Stijn", "Hanna", "Mehmet", "Ayşe", "Priya",
	"Kees", "Marja", "Henk", "Ingrid", "Wim", "Gerrit", "Ria", "Johan",
}

// familyNames are obviously invented: every one contains a Dutch or English
// word for "fake", "example", "test" or "made up".
var familyNames = []string{
	"Voorbeeld", "de Proef", "van Verzonnen", "Fictief", "Nepstra", "van der Nep",
	"Testema", "de Demo", "Fictiefsma", "Namaakman", "van Proefhuizen", "de Verzinsel",
	"Voorbeeldsma", "Demokamp", "van Testeren", "Nepveld", "Zomaarsma", "de Placeholder",
}

// fakeClient returns synthetic details for the client with the given number.
func fakeClient(d dice, n int) *casev1.ClientDetails {
	given, family := pick(d, givenNames), pick(d, familyNames)
	local := strings.ToLower(strings.NewReplacer(" ", "", "ë", "e", "ş", "s").Replace(given + "." + family))
	c := &casev1.ClientDetails{GivenName: given, FamilyName: family, Email: fmt.Sprintf("%s.%d@example.org", local, n)}
	if d.chance(0.7) {
		c.Phone = fmt.Sprintf("+31 6 0000 %04d", n%10000)
	}
	return c
}

// reasons are what clients said brought them, by question type.
var reasons = map[casev1.QuestionType][]string{
	casev1.QuestionType_QUESTION_TYPE_CHOICE: {
		"Contract ends this year; does not know which direction to take.",
		"Wants to change field but finds it hard to turn interests into jobs.",
		"Employer asked to think about a next step within the organisation.",
	},
	casev1.QuestionType_QUESTION_TYPE_COMPETENCE: {
		"Wants to grow into a senior role and needs a plan to get there.",
		"New team lead, looking for a grip on the role.",
		"Wants to develop commercial skills for a move within the company.",
	},
	casev1.QuestionType_QUESTION_TYPE_LIFE: {
		"After twenty years in the same job wonders whether this is all.",
		"Life changed after a loss; work no longer feels meaningful.",
		"Questions what really matters now the children have left home.",
	},
	casev1.QuestionType_QUESTION_TYPE_COUNSELING: {
		"Keeps getting stuck in applications; little self-confidence.",
		"Worries a lot and postpones every decision about work.",
		"Repeated conflicts with managers; feels blocked.",
	},
}

var fiveAnswers = [5][]string{
	{"Conscientious and loyal; others see a calm colleague.", "Curious, helpful, sometimes too modest.", "A practical problem solver who likes structure."},
	{"Work with more autonomy and visible results.", "A role with people contact and variety.", "Keep learning, closer to home."},
	{"Organising, explaining, keeping overview.", "Analysing data and advising.", "Caring for people, calm under pressure."},
	{"In the own sector, or in education.", "At smaller employers in the region.", "Inside the organisation, in a staff role."},
	{"Talk to people in the field, then a short course.", "Update the CV and ask the network.", "Try a project in another team first."},
}

// fakeAnswers returns intake answers fitting the question type.
func fakeAnswers(d dice, qt casev1.QuestionType) *casev1.IntakeAnswers {
	return &casev1.IntakeAnswers{
		ReasonForComing: pick(d, reasons[qt]),
		WhoAmI:          pick(d, fiveAnswers[0]),
		WhatDoIWant:     pick(d, fiveAnswers[1]),
		WhatCanIDo:      pick(d, fiveAnswers[2]),
		WhereDoIFindIt:  pick(d, fiveAnswers[3]),
		HowDoIGetThere:  pick(d, fiveAnswers[4]),
	}
}

var sessionNotes = []string{
	"Went through the results of the interest questionnaire.",
	"Discussed strengths and two concrete next steps.",
	"Client prepared network conversations; practised the pitch.",
	"Reflected on values; homework: a life line exercise.",
	"Talked about doubts and what holds the client back.",
	"Reviewed applications sent and the feedback received.",
	"Evaluated progress against the development plan.",
	"Load and recovery discussed; energy slowly returning.",
}

// fakeNotes returns a session note, or none as often as coaches leave it.
func fakeNotes(d dice) string {
	if d.chance(0.4) {
		return ""
	}
	return pick(d, sessionNotes)
}

var goalTexts = []struct{ description, actions string }{
	{"Choose a direction for the next five years", "Interest test, three informational interviews, decision talk"},
	{"Grow into the role of team lead", "Leadership course, monthly reflection with the coach"},
	{"Find work that fits personal values", "Values exercise, explore two sectors"},
	{"Apply with confidence", "Application training, practise interviews, send five applications"},
	{"Build a network in the new field", "Ten conversations, join a professional association"},
	{"Regain a healthy work-life balance", "Agree working hours, weekly energy check"},
	{"Prepare for work as self-employed", "Business plan, talk to two entrepreneurs"},
}

// fakeGoals returns two to four development goals, the first due by
// target.
func fakeGoals(d dice, target *casev1.Date) []*casev1.DevelopmentGoal {
	n := d.between(2, 4)
	start := d.IntN(len(goalTexts))
	goals := make([]*casev1.DevelopmentGoal, n)
	for i := range goals {
		g := goalTexts[(start+i)%len(goalTexts)]
		goals[i] = &casev1.DevelopmentGoal{Description: g.description, Actions: g.actions}
	}
	goals[0].TargetOn = target
	return goals
}

var closingSummaries = []string{
	"Client moved abroad; trajectory stopped by mutual agreement.",
	"Trajectory paused indefinitely at the client's request for family reasons.",
}

var referralDetails = []string{
	"Referred to the general practitioner for the complaints first.",
	"Referred to a psychologist; coaching may resume later.",
	"Handed over to the company social worker.",
}

var reclassificationExplanations = []string{
	"The question turned out to be about a conflict at home rather than work.",
}
